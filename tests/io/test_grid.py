"""The one window grid: counts, even owned spans, context, fitted inference windows, and the same
owner for every pixel in validation (sampler) and inference (tile grid)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from torchgeo.samplers.utils import tile_to_chips

from satcnn.data.samplers import GridWindowSampler, Region
from satcnn.errors import ConfigError
from satcnn.inference.windows import CPU_WINDOW, CUDA_WINDOW, default_batch_size, default_window
from satcnn.io.grid import (
    axis_spans,
    axis_windows,
    computed_ratio,
    fit_window,
    owned_bounds,
    tile_grid,
    window_count,
)

MARGIN = 32  # the inference CLI's default margin
RESUNET_MULTIPLE = 8  # size_multiple of the default ResUNet (four levels)


def _old_computed(length: int, window: int, margin: int, multiple: int = RESUNET_MULTIPLE) -> int:
    """Pixels computed along an axis under main's rule: fixed windows, the last one pulled back."""
    w = min(window, -(-length // multiple) * multiple)
    n = 1 if length <= w else 1 + -(-(length - w) // (w - 2 * margin))
    return n * w


# -- the rule along one axis -------------------------------------------------------------------


@pytest.mark.parametrize("window", [8, 16, 31, 32])
def test_axis_windows_own_every_pixel_once_with_context(window: int) -> None:
    for length, overlap in itertools.product(range(1, 130), range(window)):
        windows = axis_windows(length, window, overlap)
        n = len(windows)
        assert n == window_count(length, window, overlap)
        if length >= window:
            assert n == tile_to_chips((0, 0, 1, length), (window, 1), (window - overlap, 1))[0]
            assert windows[0].start == 0 and windows[-1].stop == length
        if n > 1:  # the fewest: one window less cannot cover the axis with that overlap
            assert window + (n - 2) * (window - overlap) < length
        owned = np.zeros(length, int)
        for w in windows:
            assert w.stop - w.start == window and w.start >= 0 and w.stop <= max(length, window)
            lo, hi = w.owned
            assert 0 <= lo < hi <= window
            owned[w.own_start : w.own_stop] += 1
            # every owned pixel keeps overlap // 2 of context inside its window, or the axis edge
            assert lo >= overlap // 2 or w.own_start == 0
            assert window - hi >= overlap // 2 or w.own_stop == length
        assert (owned == 1).all()
        if overlap % 2 == 0:
            assert all(a.stop - b.start >= overlap for a, b in itertools.pairwise(windows))


def test_owned_spans_are_even() -> None:
    for length, count, overlap in [(1000, 7, 64), (101, 4, 9), (5000, 12, 64), (77, 3, 0)]:
        bounds = owned_bounds(length, count, overlap)
        spans = np.diff(bounds)
        assert bounds[0] == 0 and bounds[-1] == length and len(spans) == count
        interior = spans[1:-1]
        assert interior.max() - interior.min() <= 1
        # the edge windows own overlap / 2 more: the raster edge is their outer margin
        assert abs(spans[0] - overlap / 2 - interior.mean()) <= 1
        assert abs(spans[-1] - overlap / 2 - interior.mean()) <= 1
    with pytest.raises(ConfigError, match="cannot split"):
        owned_bounds(10, 4, 8)


@pytest.mark.parametrize(("length", "window", "overlap"), [(0, 8, 0), (10, 0, 0), (10, 8, 8), (8, 8, -1)])
def test_bad_axis_settings(length: int, window: int, overlap: int) -> None:
    with pytest.raises(ConfigError):
        axis_windows(length, window, overlap)


# -- inference: windows fitted to the raster ---------------------------------------------------


@pytest.mark.parametrize(("window", "margin", "multiple"), [(64, 8, 1), (64, 4, 8), (96, 16, 16), (32, 0, 8)])
def test_fitted_windows_are_fewest_and_shortest(window: int, margin: int, multiple: int) -> None:
    overlap = 2 * margin
    for length in range(1, 400):
        spans = axis_spans(length, window, margin, multiple)
        n = len(spans)
        sides = {stop - start for start, stop, _, _ in spans}
        assert len(sides) == 1, "one window length per axis, so windows batch"
        side = sides.pop()
        assert side % multiple == 0 and side <= window
        assert n == window_count(length, window, overlap)  # as few windows as the largest allows
        if n == 1:
            assert side == -(-length // multiple) * multiple  # the zero-padded single window
            continue
        # the next shorter multiple cannot give even cores plus both margins
        assert side - multiple < -(-(length - overlap) // n) + overlap
        cores = [c1 - c0 for _, _, c0, c1 in spans]
        assert max(cores[1:-1], default=cores[0]) - min(cores[1:-1], default=cores[0]) <= 1
        for start, stop, c0, c1 in spans:
            assert 0 <= start <= c0 < c1 <= stop <= length
            assert c0 - start >= margin or c0 == 0
            assert stop - c1 >= margin or c1 == length


def test_fit_window_keeps_the_count() -> None:
    for length, window, overlap, multiple in itertools.product(
        range(1, 700, 7), (64, 128, 512), (0, 8, 64), (1, 8, 16)
    ):
        if overlap >= window:
            continue
        fitted = fit_window(length, window, overlap, multiple)
        assert fitted <= window and fitted % multiple == 0
        if length > fitted:
            assert window_count(length, fitted, overlap) == window_count(length, window, overlap)


@pytest.mark.parametrize(
    ("height", "width", "windows", "shape", "old_ratio"),
    [
        # 1024: 3 windows of 384 (cores 352+32, 320, 352+32) instead of 3 of 512
        (1024, 1024, 9, (384, 384), 2.25),
        (2048, 2048, 25, (464, 464), 1.5625),
        (4096, 4096, 81, (512, 512), 1.265625),
        (3000, 5000, 84, (488, 480), 1.4680),
    ],
)
def test_window_counts_and_computed_ratio_at_a_512_window(
    height: int, width: int, windows: int, shape: tuple[int, int], old_ratio: float
) -> None:
    """512 was the CPU default before it became 1088 (the old default, now given explicitly)."""
    window = 512
    tiles = tile_grid(height, width, window, MARGIN, RESUNET_MULTIPLE)
    assert len(tiles) == windows
    assert {(int(t.read.height), int(t.read.width)) for t in tiles} == {shape}
    ratio = computed_ratio(height, width, window, MARGIN, RESUNET_MULTIPLE)
    assert ratio == pytest.approx(windows * shape[0] * shape[1] / (height * width))
    old = _old_computed(height, window, MARGIN) * _old_computed(width, window, MARGIN) / (height * width)
    assert old == pytest.approx(old_ratio, abs=1e-4)
    assert ratio <= old


@pytest.mark.parametrize(
    ("height", "width", "windows", "shape"),
    [
        # rasters of 2048 px a side or more: at most 1.15x the raster's pixels
        (2048, 2048, 4, (1056, 1056)),  # 1.06
        (4096, 4096, 16, (1072, 1072)),  # 1.10
        (10_000, 10_000, 100, (1064, 1064)),  # 1.13
        (3000, 5000, 15, (1048, 1056)),  # 1.11
        (2200, 2200, 9, (776, 776)),  # 1.12
        # the small-raster rule: one window when the raster fits in one, rounded up to the multiple
        (1024, 1024, 1, (1024, 1024)),
        (300, 700, 1, (304, 704)),
        # just over one window: two per axis, each the raster's half plus the margins
        (1089, 1089, 4, (584, 584)),
    ],
)
def test_window_counts_and_computed_ratio_at_cpu_defaults(
    height: int, width: int, windows: int, shape: tuple[int, int]
) -> None:
    window = default_window("cpu", 224, RESUNET_MULTIPLE)
    assert window == CPU_WINDOW == 1088
    tiles = tile_grid(height, width, window, MARGIN, RESUNET_MULTIPLE)
    assert len(tiles) == windows
    assert {(int(t.read.height), int(t.read.width)) for t in tiles} == {shape}
    ratio = computed_ratio(height, width, window, MARGIN, RESUNET_MULTIPLE)
    assert ratio == pytest.approx(windows * shape[0] * shape[1] / (height * width))
    if min(height, width) >= 2048:
        assert ratio <= 1.15
    if windows == 1:  # nothing computed twice: only the rounding up to the size multiple
        assert shape == tuple(-(-s // RESUNET_MULTIPLE) * RESUNET_MULTIPLE for s in (height, width))
    else:  # per axis: the raster, the overlaps of 2 * margin between neighbours, the rounding
        for length, side in zip((height, width), shape, strict=True):
            n = window_count(length, window, 2 * MARGIN)
            assert n * side < length + (n - 1) * 2 * MARGIN + n * RESUNET_MULTIPLE


def test_default_batch_keeps_cpu_memory_near_the_old_default() -> None:
    """One 1088² window a batch on CPU: about the pixels (so the memory) of the old four of 512²."""
    assert default_batch_size("cpu") == 1 and default_batch_size("cuda:0") == 4
    pixels = default_batch_size("cpu") * default_window("cpu", 224, RESUNET_MULTIPLE) ** 2
    assert pixels <= 1.15 * 4 * 512**2


def test_default_cpu_window_computes_at_most_1_15_of_large_rasters() -> None:
    window = default_window("cpu", 224, RESUNET_MULTIPLE)
    sides = [*range(2048, 12_000, 97), 2049, 4096, 8192, 10_000]
    for height, width in itertools.product(sides[::4], sides):
        assert computed_ratio(height, width, window, MARGIN, RESUNET_MULTIPLE) <= 1.15, (height, width)
    # the old default fails the goal on every one of these rasters
    assert all(computed_ratio(s, s, 512, MARGIN, RESUNET_MULTIPLE) > 1.15 for s in (2048, 4096, 10_000))


def test_computed_ratio_is_as_small_as_the_margins_allow() -> None:
    """Per axis, n windows compute at most the raster, the n - 1 inner overlaps and the rounding."""
    window = default_window("cpu", 224, RESUNET_MULTIPLE)
    for length in range(100, 6000, 13):
        n = window_count(length, window, 2 * MARGIN)
        spans = axis_spans(length, window, MARGIN, RESUNET_MULTIPLE)
        computed = len(spans) * (spans[0][1] - spans[0][0])
        assert len(spans) == n
        assert computed < length + (n - 1) * 2 * MARGIN + n * RESUNET_MULTIPLE
        assert computed <= _old_computed(length, window, MARGIN)


def test_default_gpu_window_computes_at_most_1_15_of_large_rasters() -> None:
    window = default_window("cuda", 224, 16)
    assert window == CUDA_WINDOW
    assert default_window("cuda:1", 2000, 16) == 2000  # never below the training patch
    assert default_window("cpu", 100, 64) == 1088  # a multiple of 64 already
    assert default_window("cpu", 100, 48) == 1104  # rounded up to the size multiple
    sides = [*range(2048, 12_000, 97), 2049, 4096, 8192, 10_000]
    for height, width in itertools.product(sides[::4], sides):
        assert computed_ratio(height, width, window, MARGIN, 16) <= 1.15, (height, width)


# -- one owner per pixel in validation and inference -------------------------------------------


def _owners(rects: list[tuple[int, int, int, int]], height: int, width: int) -> np.ndarray:
    """Index of the window owning each pixel (-1: none); fails when a pixel has two owners."""
    owner = np.full((height, width), -1)
    for i, (r0, r1, c0, c1) in enumerate(rects):
        assert (owner[r0:r1, c0:c1] == -1).all(), "a pixel owned twice"
        owner[r0:r1, c0:c1] = i
    return owner


@pytest.mark.parametrize(
    ("height", "width", "patch", "overlap"),
    [(100, 100, 32, 16), (100, 75, 32, 16), (300, 224, 224, 32), (61, 97, 30, 8), (40, 32, 32, 0)],
)
def test_sampler_and_inference_give_every_pixel_the_same_owner(
    height: int, width: int, patch: int, overlap: int
) -> None:
    """Validation windows of the patch size and inference windows (margin = overlap / 2) on the
    same raster: every pixel is owned by the same window (same row and column of the grid)."""
    refs = list(GridWindowSampler([Region(0, 0, 0, height, width)], patch, overlap))
    val = []
    for ref in refs:
        assert ref.owned is not None
        r0, r1, c0, c1 = ref.owned
        val.append((ref.row_off + r0, ref.row_off + r1, ref.col_off + c0, ref.col_off + c1))
    inf = [
        (
            int(t.core.row_off),
            int(t.core.row_off + t.core.height),
            int(t.core.col_off),
            int(t.core.col_off + t.core.width),
        )
        for t in tile_grid(height, width, patch, overlap // 2)
    ]
    val_owner, inf_owner = _owners(val, height, width), _owners(inf, height, width)
    assert (val_owner >= 0).all() and (inf_owner >= 0).all()
    np.testing.assert_array_equal(val_owner, inf_owner)
