"""The window grid: where windows start and which pixels each window owns.

One rule serves validation/test (:class:`satcnn.data.samplers.GridWindowSampler`, windows of the
training patch size) and tiled inference (:func:`tile_grid`, windows fitted to the raster), so a
pixel is owned by the same window in both. Along an axis of ``length`` pixels, with windows that
may be at most ``window`` long and neighbours that overlap by at least ``overlap``:

1. **Count**: ``n`` is the fewest windows that cover the axis with that overlap,
   ``ceil((length - overlap) / (window - overlap))`` (1 when the axis fits in one window).
2. **Ownership** depends on ``length``, ``n`` and ``overlap`` only: the boundaries are
   ``overlap / 2 + i * (length - overlap) / n`` (floored), so interior windows own even spans
   and the two edge windows own ``overlap / 2`` more (the raster edge is their outer margin).
3. **Placement**: all windows of an axis have one length (the patch size, or for inference the
   smallest multiple of the model's size multiple that holds a span plus ``overlap``), and each is
   centred on the span it owns, then moved inward to lie inside the axis. A single window
   longer than the axis starts at 0 and is read with zero fill.

With ``overlap = 2 * margin`` every owned pixel has at least ``margin`` pixels of context inside
its window, or reaches the raster edge. Pure integer arithmetic, no I/O.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from rasterio.windows import Window

from satcnn.checks import require_at_least
from satcnn.errors import ConfigError

__all__ = [
    "AxisWindow",
    "Tile",
    "axis_spans",
    "axis_windows",
    "computed_ratio",
    "fit_window",
    "owned_bounds",
    "tile_grid",
    "window_count",
]


@dataclass(frozen=True)
class AxisWindow:
    """One window along one axis, in absolute pixels of the axis.

    Attributes:
        start: First pixel read (>= 0).
        stop: One past the last pixel read (beyond the axis only for a single padded window).
        own_start: First pixel this window owns.
        own_stop: One past the last pixel it owns.
    """

    start: int
    stop: int
    own_start: int
    own_stop: int

    @property
    def owned(self) -> tuple[int, int]:
        """The owned span relative to the window's start."""
        return self.own_start - self.start, self.own_stop - self.start


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _check_axis(length: int, window: int, overlap: int) -> None:
    require_at_least("axis length", length, 1)
    # One window covering the axis has no neighbour, so any overlap fits it.
    if window < 1 or overlap < 0 or (length > window and overlap >= window):
        raise ConfigError(
            f"need window >= 1 and 0 <= overlap < window, got window {window}, overlap {overlap}"
        )


def window_count(length: int, window: int, overlap: int) -> int:
    """Fewest windows of at most ``window`` pixels that cover ``length`` with ``overlap`` between them.

    This is torchgeo's ``tile_to_chips`` count for stride ``window - overlap``, and 1 when the
    axis fits in one window.

    Raises:
        ConfigError: ``length < 1``, ``window < 1`` or ``overlap`` outside ``[0, window)``.
    """
    _check_axis(length, window, overlap)
    if length <= window:
        return 1
    return _ceil_div(length - overlap, window - overlap)


def owned_bounds(length: int, count: int, overlap: int) -> list[int]:
    """Boundaries ``[0, b_1, ..., length]`` of the spans owned by ``count`` windows (rule 2).

    Raises:
        ConfigError: ``count < 1``, or more windows than the overlap leaves pixels to own.
    """
    if count < 1 or (count > 1 and length - overlap < count):
        raise ConfigError(f"cannot split {length} pixels with overlap {overlap} among {count} windows")
    inner = [(count * overlap + 2 * i * (length - overlap)) // (2 * count) for i in range(1, count)]
    return [0, *inner, length]


def axis_windows(length: int, window: int, overlap: int) -> list[AxisWindow]:
    """Windows of exactly ``window`` pixels along an axis, and the span each owns.

    Args:
        length: Axis length in pixels.
        window: Length of every window. A window longer than the axis gives a single window
            starting at 0 (read with zero fill beyond the axis).
        overlap: Overlap between neighbours, ``0 <= overlap < window`` (any ``overlap >= 0`` when
            one window covers the axis). Neighbours share at least ``overlap`` pixels (an odd
            one may lose one), and every owned pixel keeps ``overlap // 2`` pixels of context
            inside its window or reaches the axis edge.

    Returns:
        The windows in order; their owned spans tile ``[0, length)`` exactly.

    Raises:
        ConfigError: Invalid sizes.
    """
    bounds = owned_bounds(length, window_count(length, window, overlap), overlap)
    last = max(0, length - window)
    starts = [min(max((lo + hi - window) // 2, 0), last) for lo, hi in itertools.pairwise(bounds)]
    return [
        AxisWindow(s, s + window, lo, hi)
        for s, (lo, hi) in zip(starts, itertools.pairwise(bounds), strict=True)
    ]


def _check_inference(window: int, margin: int, size_multiple: int) -> None:
    require_at_least("size_multiple", size_multiple, 1)
    if window < 1 or window % size_multiple:
        raise ConfigError(
            f"window {window} must be a positive multiple of the model's size multiple {size_multiple}"
        )
    if margin < 0 or 2 * margin >= window:
        raise ConfigError(f"margin {margin} must be >= 0 and less than half the window {window}")


def fit_window(length: int, window: int, overlap: int, size_multiple: int = 1) -> int:
    """The shortest window, a multiple of ``size_multiple``, that keeps the count of ``window`` (rule 3).

    The count of windows stays :func:`window_count` ``(length, window, overlap)``; the fitted
    length is ``ceil((length - overlap) / n) + overlap`` rounded up to ``size_multiple``, at most
    ``window`` (itself a multiple). An axis shorter than ``window`` gets ``length`` rounded up.
    """
    n = window_count(length, window, overlap)
    fitted = _ceil_div(length - overlap, n) + overlap if n > 1 else length
    return min(window, _ceil_div(fitted, size_multiple) * size_multiple)


def axis_spans(
    length: int, window: int, margin: int, size_multiple: int = 1
) -> list[tuple[int, int, int, int]]:
    """Inference windows and cores along one axis: windows fitted to the axis, ``2 * margin`` overlap.

    Args:
        length: Axis length in pixels (>= 1).
        window: Largest window length (a multiple of ``size_multiple``).
        margin: Context pixels each core keeps on both sides (or up to the raster edge).
        size_multiple: Window lengths must be a multiple of this (e.g. 8 for three poolings).

    Returns:
        ``(read_start, read_stop, core_start, core_stop)`` per window, in order; all windows
        have the same length.

    Raises:
        ConfigError: Invalid window, margin, size multiple or length.
    """
    _check_inference(window, margin, size_multiple)
    overlap = 2 * margin
    fitted = fit_window(length, window, overlap, size_multiple)  # same count, so same ownership
    return [(w.start, w.stop, w.own_start, w.own_stop) for w in axis_windows(length, fitted, overlap)]


@dataclass(frozen=True)
class Tile:
    """One inference window of a 2-D grid.

    Attributes:
        read: The window to read (beyond the raster only where it is shorter than a window).
        core: The part of the raster this window writes (the pixels it owns).
    """

    read: Window
    core: Window

    @property
    def core_slices(self) -> tuple[slice, slice]:
        """Row and column slices of the core inside an array read with ``read``."""
        r = int(self.core.row_off - self.read.row_off)
        c = int(self.core.col_off - self.read.col_off)
        return slice(r, r + int(self.core.height)), slice(c, c + int(self.core.width))


def tile_grid(height: int, width: int, window: int, margin: int, size_multiple: int = 1) -> list[Tile]:
    """All inference tiles of a ``height`` x ``width`` raster, row by row.

    Window sides are fitted per axis (:func:`fit_window`), so a grid's windows share one shape,
    which may be non-square and is at most ``window`` on each side.

    Args:
        height: Raster rows.
        width: Raster columns.
        window: Largest window side (a multiple of ``size_multiple``).
        margin: Context pixels on each side of a core.
        size_multiple: Window sides must be a multiple of this.

    Returns:
        The tiles; their cores tile the raster exactly.
    """
    rows = axis_spans(height, window, margin, size_multiple)
    cols = axis_spans(width, window, margin, size_multiple)
    return [
        Tile(
            read=Window(c0, r0, c1 - c0, r1 - r0),  # type: ignore[call-arg]
            core=Window(cc0, rc0, cc1 - cc0, rc1 - rc0),  # type: ignore[call-arg]
        )
        for r0, r1, rc0, rc1 in rows
        for c0, c1, cc0, cc1 in cols
    ]


def computed_ratio(height: int, width: int, window: int, margin: int, size_multiple: int = 1) -> float:
    """Pixels the model computes for :func:`tile_grid` divided by the raster's pixels (>= 1)."""
    ratio = 1.0
    for length in (height, width):
        spans = axis_spans(length, window, margin, size_multiple)
        ratio *= len(spans) * (spans[0][1] - spans[0][0]) / length
    return ratio
