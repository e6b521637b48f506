"""Window grid for tiled inference: read windows with overlap and core windows that tile exactly.

Pure functions (no I/O). Along each axis of length ``L`` with window ``w`` and margin ``m``:

* windows start every ``s = w - 2m`` pixels; the last one is pulled back to end at ``L``;
* the core (the pixels a window writes) is the window minus ``m`` on each side, except that
  the first core starts at 0 and the last ends at ``L`` (the raster edge has no neighbour to
  take over, and there the model sees the same zero padding as on the whole raster);
* consecutive cores meet exactly, so cores tile the raster with no gap and no overlap, and
  every core pixel has at least ``m`` pixels of context inside its window (or the raster edge).

When ``L < w`` there is one window, shrunk to ``L`` rounded up to ``size_multiple``; it may then
extend beyond the raster and is read boundless with zero fill. All windows of a grid have the
same shape, so they can be batched.
"""

from __future__ import annotations

from dataclasses import dataclass

from rasterio.windows import Window

from satcnn.errors import ConfigError

__all__ = ["Tile", "axis_spans", "tile_grid", "window_shape"]


@dataclass(frozen=True)
class Tile:
    """One window of the grid.

    Attributes:
        read: The window to read (may extend beyond the raster).
        core: The part of the raster this window writes (inside the raster).
    """

    read: Window
    core: Window

    @property
    def core_slices(self) -> tuple[slice, slice]:
        """Row and column slices of the core inside an array read with ``read``."""
        r = int(self.core.row_off - self.read.row_off)
        c = int(self.core.col_off - self.read.col_off)
        return slice(r, r + int(self.core.height)), slice(c, c + int(self.core.width))


def _round_up(n: int, k: int) -> int:
    return -(-n // k) * k


def _check(window: int, margin: int, size_multiple: int) -> None:
    if size_multiple < 1:
        raise ConfigError(f"size_multiple must be >= 1, got {size_multiple}")
    if window < 1 or window % size_multiple:
        raise ConfigError(
            f"window {window} must be a positive multiple of the model's size multiple {size_multiple}"
        )
    if margin < 0 or 2 * margin >= window:
        raise ConfigError(f"margin {margin} must be >= 0 and less than half the window {window}")


def window_shape(length: int, window: int, size_multiple: int = 1) -> int:
    """Window length used along an axis of ``length`` pixels (shrunk for short axes)."""
    return min(window, _round_up(max(length, 1), size_multiple))


def axis_spans(
    length: int, window: int, margin: int, size_multiple: int = 1
) -> list[tuple[int, int, int, int]]:
    """Windows and cores along one axis.

    Args:
        length: Axis length in pixels (>= 1).
        window: Window length (a multiple of ``size_multiple``).
        margin: Overlap context on each side of a core.
        size_multiple: Window lengths must be a multiple of this (e.g. 16 for four poolings).

    Returns:
        ``(read_start, read_stop, core_start, core_stop)`` per window, in order.

    Raises:
        ConfigError: Invalid window, margin or size multiple.
    """
    _check(window, margin, size_multiple)
    if length < 1:
        raise ConfigError(f"axis length must be >= 1, got {length}")
    w = window_shape(length, window, size_multiple)
    if length <= w:
        return [(0, w, 0, length)]
    stride = w - 2 * margin
    n = 1 + -(-(length - w) // stride)
    spans = []
    core_start = 0
    for i in range(n):
        start = min(i * stride, length - w)
        core_stop = length if i == n - 1 else start + w - margin
        spans.append((start, start + w, core_start, core_stop))
        core_start = core_stop
    return spans


def tile_grid(height: int, width: int, window: int, margin: int, size_multiple: int = 1) -> list[Tile]:
    """All tiles of a ``height`` x ``width`` raster, row by row.

    Args:
        height: Raster rows.
        width: Raster columns.
        window: Square window size (a multiple of ``size_multiple``).
        margin: Overlap context on each side of a core.
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
