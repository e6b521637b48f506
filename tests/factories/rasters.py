"""GeoTIFFs for tests: one writer with parameters, crops of the real samples, and seeded bands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.enums import ColorInterp
from rasterio.transform import Affine, from_origin
from rasterio.windows import Window

UTM = "EPSG:32633"
ORIGIN = (500_000.0, 4_600_000.0)  # UTM 33N, metres
RGBA = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha]


def write_tif(
    path: Path,
    data: np.ndarray | None = None,
    *,
    count: int = 4,
    height: int = 40,
    width: int = 50,
    dtype: str = "uint8",
    res: float = 10.0,
    origin: tuple[float, float] = ORIGIN,
    transform: Affine | None = None,
    crs: str | CRS | None = UTM,
    georeferenced: bool = True,
    nodata: float | None = None,
    colorinterp: list[ColorInterp] | tuple[ColorInterp, ...] | None = None,
    descriptions: list[str] | None = None,
    rgb: bool = False,
    **options: Any,
) -> Path:
    """Write a GeoTIFF and return its path.

    Args:
        path: The file to write (its folder is created).
        data: (bands, rows, cols) or (rows, cols) for one band; None for seeded values in [0, 200)
            of ``count`` x ``height`` x ``width`` and ``dtype``.
        count: Bands of the generated data.
        height: Rows of the generated data.
        width: Columns of the generated data.
        dtype: Type of the generated data.
        res: Pixel size in metres (with ``origin``, unless ``transform`` is given).
        origin: Upper-left corner (x, y).
        transform: The geotransform, instead of ``origin`` and ``res``.
        crs: The CRS; None writes the transform without one.
        georeferenced: False writes neither CRS nor transform.
        nodata: The nodata value.
        colorinterp: Colour interpretation, set after writing.
        descriptions: Band descriptions.
        rgb: Tag bands 1-3 of uint8 data red, green, blue (no alpha) as ``synth-roads`` writes them,
            unless ``colorinterp`` is given.
        **options: Further creation options (``tiled``, ``blockxsize``, ...).
    """
    if data is None:
        data = np.random.default_rng(0).integers(0, 200, (count, height, width)).astype(dtype)
    if data.ndim == 2:
        data = data[None]
    count, height, width = data.shape
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "count": count,
        "height": height,
        "width": width,
        "dtype": data.dtype.name,
        "nodata": nodata,
    }
    if georeferenced:
        profile["transform"] = transform if transform is not None else from_origin(*origin, res, res)
        if crs is not None:
            profile["crs"] = crs
    if rgb and count >= 3 and data.dtype == np.uint8 and colorinterp is None:
        profile.update(photometric="RGB", alpha="UNSPECIFIED")
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", **profile, **options) as ds:
        ds.write(data)
        for i, d in enumerate(descriptions or []):
            ds.set_band_description(i + 1, d)
    if colorinterp is not None:
        with rasterio.open(path, "r+") as ds:
            ds.colorinterp = colorinterp
    return path


def crop(src: Path, dst: Path, rows: int, cols: int | None = None, **changes: Any) -> Path:
    """The top-left ``rows`` x ``cols`` (default square) of ``src``, its CRS and shifted transform,
    with profile ``changes`` (``count`` keeps the first bands, ``dtype`` converts)."""
    cols = rows if cols is None else cols
    with rasterio.open(src) as ds:
        win = Window(0, 0, cols, rows)
        data = ds.read(window=win)
        profile = {**ds.profile, "width": cols, "height": rows, "transform": ds.window_transform(win)}
    profile.update(changes)
    if "count" in changes:
        data = data[: int(changes["count"])]
    with rasterio.open(dst, "w", **profile) as out:
        out.write(data.astype(profile["dtype"]))
    return dst


def road_bands(h: int = 64, w: int = 64, count: int = 4, seed: int = 0) -> np.ndarray:
    """Seeded uint8 bands, each with its own level, with a bright diagonal "road"."""
    rng = np.random.default_rng(seed)
    data = rng.integers(20, 120, size=(count, h, w)).astype(np.int32) + 15 * np.arange(count)[:, None, None]
    rows, cols = np.indices((h, w))
    data[:, np.abs(rows - cols) < 4] += 80
    return np.clip(data, 0, 255).astype(np.uint8)


def noise_bands(height: int = 150, width: int = 203, seed: int = 0) -> np.ndarray:
    """Four seeded uint8 bands of values in [1, 255) (no zeros, so 0 can be nodata)."""
    return np.random.default_rng(seed).integers(1, 255, (4, height, width)).astype(np.uint8)
