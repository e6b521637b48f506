"""Open a raster and check it fits a model before any compute is spent.

``open_raster`` reads only the header (CRS, transform, size, bands, dtype, nodata) and raises
``RasterError`` / ``InputFileNotFoundError`` naming the file, the problem and the fix.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import MaskFlags
from rasterio.errors import RasterioError
from rasterio.io import DatasetReader
from rasterio.windows import Window

from satcnn.errors import RasterError, require_file

logger = logging.getLogger(__name__)

__all__ = ["RasterInfo", "open_raster", "read_window", "valid_mask_strategy"]


@dataclass(frozen=True)
class RasterInfo:
    """Header of a validated raster.

    Attributes:
        path: The file.
        crs: Its coordinate reference system (``None`` only when not required).
        transform: Pixel-to-map affine transform.
        width: Columns.
        height: Rows.
        count: Bands.
        dtype: Data type of band 1 (all bands share it in the files satcnn reads).
        nodata: Nodata value, or ``None``.
        profile: The rasterio profile (a plain dict copy).
    """

    path: Path
    crs: CRS | None
    transform: Affine
    width: int
    height: int
    count: int
    dtype: str
    nodata: float | None
    profile: dict[str, Any] = field(repr=False, compare=False)

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)``."""
        return self.height, self.width


def open_raster(
    path: str | Path,
    *,
    bands: int | Sequence[str] | None = None,
    dtypes: Sequence[str] | None = None,
    min_size: int | None = None,
    require_crs: bool = True,
) -> RasterInfo:
    """Open ``path`` with rasterio, check it, and return its header.

    Args:
        path: A GeoTIFF (any GDAL raster format is accepted).
        bands: The band count the model expects, or its band names (the count is their number).
        dtypes: Allowed data types (e.g. ``["uint8", "uint16"]``); ``None`` allows any.
        min_size: Smallest allowed height and width in pixels (e.g. the model's window).
        require_crs: Whether a raster without a CRS is an error.

    Returns:
        The raster's header.

    Raises:
        InputFileNotFoundError: The file does not exist.
        RasterError: The file is not a readable raster, has no CRS, the wrong band count or
            dtype, or is smaller than ``min_size``.
    """
    p = require_file(path, "raster")
    if p.is_dir():
        raise RasterError("is a folder, expected a raster file (GeoTIFF)", p)
    try:
        with rasterio.open(p) as ds:
            profile = dict(ds.profile)
            info = RasterInfo(
                path=p,
                crs=ds.crs,
                transform=ds.transform,
                width=ds.width,
                height=ds.height,
                count=ds.count,
                dtype=ds.dtypes[0],
                nodata=ds.nodata,
                profile=profile,
            )
    except RasterioError as err:
        raise RasterError(f"not a readable raster (expected a GeoTIFF): {err}", p) from None

    if require_crs and info.crs is None:
        raise RasterError(
            "has no coordinate reference system (CRS); assign one, e.g. "
            "`gdal_edit.py -a_srs EPSG:32633 FILE`, so outputs can be georeferenced",
            p,
        )
    if bands is not None:
        expected = bands if isinstance(bands, int) else len(bands)
        if info.count != expected:
            names = "" if isinstance(bands, int) else f" ({', '.join(bands)})"
            raise RasterError(
                f"model expects {expected} bands{names}; file has {info.count}. "
                "Select or stack the right bands (e.g. `gdal_translate -b 1 -b 2 ...`) or use a model "
                "trained on these bands",
                p,
            )
    if dtypes is not None and info.dtype not in dtypes:
        raise RasterError(
            f"data type {info.dtype} is not supported; expected one of {', '.join(dtypes)}. "
            "Convert it (e.g. `gdal_translate -ot ...`) to the type the model was trained on",
            p,
        )
    if min_size is not None and (info.height < min_size or info.width < min_size):
        raise RasterError(
            f"raster is {info.height} x {info.width} pixels (rows x columns), smaller than one "
            f"{min_size} x {min_size} window; use a larger raster or a smaller window",
            p,
        )
    logger.debug("opened %s: %d x %d, %d bands, %s", p, info.height, info.width, info.count, info.dtype)
    return info


def valid_mask_strategy(ds: DatasetReader) -> str:
    """How to find invalid pixels of ``ds``: ``"none"``, ``"nodata"`` or ``"mask"``.

    ``"nodata"``: a pixel is invalid where every band equals the nodata value (computed from the
    data already read). ``"mask"``: the dataset has an internal mask or alpha band; use
    ``dataset_mask``. ``"none"``: every pixel is valid.
    """
    flags = ds.mask_flag_enums
    if all(MaskFlags.all_valid in f for f in flags):
        return "none"
    if ds.nodata is not None and all(MaskFlags.nodata in f for f in flags):
        return "nodata"
    return "mask"


def read_window(
    ds: DatasetReader, window: Window, *, strategy: str | None = None, out_dtype: str = "float32"
) -> tuple[np.ndarray, np.ndarray | None]:
    """Read ``window`` (which may extend beyond ``ds``) with zero fill, plus its valid-data mask.

    Only the part inside the raster is read from disk; the rest is zero, and invalid (nodata or
    masked) pixels are set to zero too, so the model sees the same fill everywhere.

    Args:
        ds: An open dataset.
        window: Integer window; may start at negative offsets or end beyond the raster.
        strategy: The result of ``valid_mask_strategy(ds)`` (computed when ``None``).
        out_dtype: Data type of the returned array.

    Returns:
        ``(data, valid)``: ``data`` is ``(count, window.height, window.width)``; ``valid`` is a
        boolean ``(window.height, window.width)`` array (pixels outside the raster are invalid),
        or ``None`` when every pixel is valid.
    """
    strategy = strategy or valid_mask_strategy(ds)
    h, w = int(window.height), int(window.width)
    r0, c0 = int(window.row_off), int(window.col_off)
    data = np.zeros((ds.count, h, w), dtype=out_dtype)
    rr0, cc0 = max(r0, 0), max(c0, 0)
    rr1, cc1 = min(r0 + h, ds.height), min(c0 + w, ds.width)
    inside = rr1 > rr0 and cc1 > cc0
    partial = not (rr0 == r0 and cc0 == c0 and rr1 == r0 + h and cc1 == c0 + w)
    valid: np.ndarray | None = None
    if strategy != "none" or partial:
        valid = np.zeros((h, w), dtype=bool)
    if not inside:
        return data, valid
    src_win = Window(cc0, rr0, cc1 - cc0, rr1 - rr0)
    sl = (slice(rr0 - r0, rr1 - r0), slice(cc0 - c0, cc1 - c0))
    raw = ds.read(window=src_win)
    if strategy == "nodata":
        nd = float(ds.nodata)
        is_nd = np.isnan(raw) if np.isnan(nd) else raw == np.asarray(nd).astype(raw.dtype)
        ok = ~np.all(is_nd, axis=0)
    elif strategy == "mask":
        ok = ds.dataset_mask(window=src_win) > 0
    else:
        ok = None
    data[(slice(None), *sl)] = raw
    if valid is not None:
        valid[sl] = True if ok is None else ok
        if ok is not None:
            data[:, ~valid] = 0
    return data, valid
