"""Road rasters read block by block: threshold, skeleton, and skeleton paths cut at block seams.

A raster is covered by ``block`` x ``block`` *cores*; each is read with ``halo`` extra pixels on
every side, thresholded and skeletonised (``skimage.morphology.skeletonize``), and skan traces
the paths of that skeleton. Thinning looks only at a pixel's neighbourhood, one pixel further per
pass, so with a halo wider than the roads the skeleton inside the core equals the skeleton of the
whole raster.

Seams: every link between two 8-adjacent skeleton pixels belongs to the block whose core holds
the smaller pixel (row-major). A block keeps the runs of its own links along each skan path; a
run ends at a path end or where the next link belongs to another block. Run ends that are not
true skeleton nodes therefore have exactly two runs meeting in them, one from each side, and
:class:`~satcnn.vector.graph.PixelGraph` joins them again. Over all blocks, every link is kept
exactly once, so the merged graph is the graph of the whole raster.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from rasterio.io import DatasetReader
from rasterio.windows import Window
from skimage.morphology import skeletonize

from satcnn.errors import ConfigError, RasterError
from satcnn.io.raster import RasterInfo
from satcnn.io.road_mask import RoadEncoding, check_threshold, road_encoding

__all__ = ["Block", "MaskRule", "iter_blocks", "mask_rule", "read_road_mask", "skeleton_runs"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Block:
    """One core window and the window read around it (the core plus its halo, inside the raster)."""

    index: tuple[int, int]  # (block row, block column)
    core: Window
    read: Window

    @property
    def core_offset(self) -> tuple[int, int]:
        """Row and column of the core's top-left pixel inside the read window."""
        return int(self.core.row_off - self.read.row_off), int(self.core.col_off - self.read.col_off)


def iter_blocks(height: int, width: int, block: int, halo: int) -> Iterator[Block]:
    """Row-major blocks covering a ``height`` x ``width`` raster (edge cores are smaller)."""
    if block < 16:
        raise ConfigError(f"block must be >= 16 pixels, got {block}")
    if halo < 2:
        raise ConfigError(f"halo must be >= 2 pixels, got {halo}")
    for bi, r0 in enumerate(range(0, height, block)):
        for bj, c0 in enumerate(range(0, width, block)):
            h, w = min(block, height - r0), min(block, width - c0)
            rr0, cc0 = max(0, r0 - halo), max(0, c0 - halo)
            rr1, cc1 = min(height, r0 + h + halo), min(width, c0 + w + halo)
            yield Block((bi, bj), Window(c0, r0, w, h), Window(cc0, rr0, cc1 - cc0, rr1 - rr0))


@dataclass(frozen=True)
class MaskRule:
    """How raster values become road / not road: the road rule of ``satcnn.io.road_mask``.

    A pixel is road where its probability ``p >= threshold`` (probabilities) or, for masks,
    where the value is non-zero; nodata is never road.
    """

    encoding: RoadEncoding
    threshold: float
    nodata: float | None

    @property
    def kind(self) -> str:
        """``probability`` or ``mask``."""
        return self.encoding.kind

    def apply(self, data: np.ndarray) -> np.ndarray:
        """Boolean road mask of one band of raw values."""
        road = self.encoding.road(data, self.threshold)
        if self.nodata is not None:
            road &= ~(np.isnan(data) if math.isnan(self.nodata) else data == self.nodata)
        return road


def mask_rule(info: RasterInfo, ds: DatasetReader, threshold: float) -> MaskRule:
    """Decide how to read ``ds``: satcnn's own outputs by their tags, other rasters by dtype and scale.

    See :func:`satcnn.io.road_mask.road_encoding`: satcnn masks and integer bands without a scale
    are masks (any non-zero value is road), float bands and ``prob_uint8`` (or any integer band
    with a scale) are probabilities.

    Raises:
        ConfigError: ``threshold`` is outside [0, 1].
        RasterError: the raster does not have exactly one band.
        DataFormatError: the raster is a satcnn output with malformed tags.
    """
    check_threshold("threshold", threshold)
    if info.count != 1:
        raise RasterError(
            f"expected 1 band (a road probability or mask), file has {info.count}; "
            f"select the road band, e.g. `rio stack {info.path} --bidx 1 -o road.tif`",
            info.path,
        )
    return MaskRule(road_encoding(ds), threshold, info.nodata)


def read_road_mask(ds: DatasetReader, window: Window, rule: MaskRule) -> np.ndarray:
    """Read ``window`` of band 1 and return the boolean road mask."""
    return rule.apply(ds.read(1, window=window))


def skeleton_runs(road: np.ndarray, block: Block) -> list[np.ndarray]:
    """Skeletonise the read window's road mask and return this block's runs of skeleton links.

    Args:
        road: Boolean road mask of ``block.read``.
        block: The block.

    Returns:
        A list of ``(n, 2)`` int32 arrays of global ``(row, col)`` pixels, ``n >= 2``; consecutive
        pixels are 8-adjacent skeleton pixels.
    """
    from skan import Skeleton  # numba compiles on first import; keep it off `satcnn --help`

    skel = skeletonize(road)
    r0, c0 = block.core_offset
    h, w = int(block.core.height), int(block.core.width)
    # Links owned here have their smaller pixel in the core, the other at most one pixel beyond.
    near = skel[max(r0 - 1, 0) : r0 + h + 1, max(c0 - 1, 0) : c0 + w + 1]
    if np.count_nonzero(near) < 2:
        return []
    graph = Skeleton(skel)
    pixels = np.asarray(graph.coordinates, dtype=np.int64)
    offset = np.array([int(block.read.row_off), int(block.read.col_off)], dtype=np.int64)
    core_lo = np.array([int(block.core.row_off), int(block.core.col_off)], dtype=np.int64)
    core_hi = core_lo + np.array([h, w], dtype=np.int64)
    runs: list[np.ndarray] = []
    for ids in graph.paths_list():
        path = pixels[np.asarray(ids)] + offset
        a, b = path[:-1], path[1:]
        first = (a[:, 0] < b[:, 0]) | ((a[:, 0] == b[:, 0]) & (a[:, 1] < b[:, 1]))
        owner = np.where(first[:, None], a, b)
        owned = np.all((owner >= core_lo) & (owner < core_hi), axis=1)
        if not owned.any():
            continue
        runs.extend(_owned_runs(path, owned))
    return runs


def _owned_runs(path: np.ndarray, owned: np.ndarray) -> list[np.ndarray]:
    """Maximal runs of consecutive owned links of ``path`` as pixel arrays."""
    if owned.all():
        return [path.astype(np.int32)]
    edges = np.flatnonzero(np.diff(np.r_[0, owned.astype(np.int8), 0]))
    return [path[s : e + 1].astype(np.int32) for s, e in zip(edges[::2], edges[1::2], strict=True)]
