"""Road masks hold 0 (background) and 1 or 255 (road); anything else is checked before training.

Every non-zero mask value is read as road (``docs/architecture.md``, road masks). A class-coded
raster given as a mask by mistake (values 3 and 7, say) would silently become "all classes are
road", so :func:`check_mask_values` reads each mask once, block by block, and refuses values
outside {0, 1, 255}, or only warns when they are allowed on purpose.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from satcnn.errors import RasterError
from satcnn.io.raster import open_dataset

logger = logging.getLogger(__name__)

__all__ = ["MASK_VALUES", "check_mask_values", "mask_values"]

MASK_VALUES = frozenset({0, 1, 255})
_SHOWN = 8  # values named in a message


def mask_values(path: str | Path) -> list[float]:
    """The distinct values of band 1 of ``path``, sorted (read block by block, memory stays flat)."""
    found: set[float] = set()
    with open_dataset(path) as ds:
        integer = np.dtype(ds.dtypes[0]).kind in "ui"
        for _, window in ds.block_windows(1):
            block = ds.read(1, window=window)
            if integer and block.dtype.itemsize == 1:
                counts = np.bincount(block.ravel().astype(np.uint8), minlength=256)
                found.update(np.flatnonzero(counts).tolist())
            else:
                found.update(np.unique(block[~np.isnan(block)] if not integer else block).tolist())
    return sorted(found)


def check_mask_values(
    paths: Iterable[str | Path],
    allow: bool = False,
    how_to_allow: str = "set data.init_args.allow_other_mask_values: true",
) -> None:
    """Refuse (or, with ``allow``, warn about) masks holding values other than 0, 1 and 255.

    Args:
        paths: Mask rasters.
        allow: Only warn; every non-zero value is then read as road.
        how_to_allow: The option that allows them, for the message.

    Raises:
        RasterError: A mask holds other values and ``allow`` is false, naming the file and values.
    """
    for path in paths:
        other = [v for v in mask_values(path) if v not in MASK_VALUES]
        if not other:
            continue
        shown = ", ".join(f"{v:g}" for v in other[:_SHOWN]) + (" ..." if len(other) > _SHOWN else "")
        if allow:
            logger.warning("%s: mask values %s are read as road (other mask values allowed)", path, shown)
            continue
        raise RasterError(
            f"mask holds values {shown} besides 0, 1 and 255 (a class-coded raster?); every non-zero "
            "value would be read as road. Write a 0/1 road mask (e.g. `rio calc "
            f'"(where (== (read 1 1) ROAD_CLASS) 1 0)" {path} road.tif --dtype uint8`), or {how_to_allow} '
            "to read every non-zero value as road",
            path,
        )
