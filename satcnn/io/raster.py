"""Open a raster and check it fits a model before any compute is spent.

``open_raster`` reads only the header (CRS, transform, size, bands, dtype, nodata) and raises
``RasterError`` / ``InputFileNotFoundError`` naming the file, the problem and the fix.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import ColorInterp
from rasterio.errors import RasterioError
from rasterio.io import DatasetReader

from satcnn.errors import RasterError, require_file
from satcnn.io.reader import accepts_bands, consumed_bands
from satcnn.io.remote import Href, gdal_env, is_href, signed
from satcnn.io.stac_inputs import StacSource
from satcnn.io.stac_vrt import open_stack

logger = logging.getLogger(__name__)

__all__ = [
    "RasterInfo",
    "check_band_count",
    "check_raster",
    "gdal_cache_env",
    "open_dataset",
    "open_raster",
    "opened_raster",
]


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
        colorinterp: Colour interpretation per band.
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
    colorinterp: tuple[ColorInterp, ...] = field(default=(), repr=False, compare=False)

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
            The file must have exactly that many bands, or more where every band beyond them
            is alpha (then used as the mask, see ``satcnn.io.reader.alpha_mask_band``).
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
    with opened_raster(path, bands=bands, dtypes=dtypes, min_size=min_size, require_crs=require_crs) as (
        _,
        info,
    ):
        return info


@contextmanager
def opened_raster(
    path: str | Path,
    *,
    bands: int | Sequence[str] | None = None,
    dtypes: Sequence[str] | None = None,
    min_size: int | None = None,
    require_crs: bool = True,
) -> Iterator[tuple[DatasetReader, RasterInfo]]:
    """``open_raster``, with the dataset kept open for the body: one open for checks and reads.

    Raises:
        InputFileNotFoundError, RasterError: As ``open_raster``.
    """
    p = _href(path) if is_href(path) else require_file(path, "raster")
    with ExitStack() as stack:
        if isinstance(p, Href):
            ds = stack.enter_context(_open_remote(p))
        else:
            if p.is_dir():
                raise RasterError("is a folder, expected a raster file (GeoTIFF)", p)
            if p.stat().st_size == 0:
                raise RasterError(
                    "is empty (0 bytes): not a readable raster; the download or copy was cut short", p
                )
            try:
                ds = stack.enter_context(rasterio.open(p))
            except RasterioError as err:
                raise RasterError(f"not a readable raster (expected a GeoTIFF): {err}", p) from None
        try:
            info = check_raster(ds, p, bands=bands, dtypes=dtypes, min_size=min_size, require_crs=require_crs)
        except RasterioError as err:
            raise RasterError(f"not a readable raster (expected a GeoTIFF): {err}", p) from None
        yield ds, info


def _href(path: str | Path) -> Href:
    return path if isinstance(path, Href) else Href(str(path))


@contextmanager
def _open_remote(p: Href) -> Iterator[DatasetReader]:
    """Open an href (signed) or a STAC item's assets, under satcnn's GDAL configuration."""
    with gdal_env():
        if isinstance(p, StacSource):
            with open_stack(p.plan, str(p)) as ds:
                yield ds
            return
        try:
            ds = rasterio.open(signed(str(p)))
        except RasterioError as err:
            raise RasterError(f"cannot be read over the network: {err}", p) from None
        with ds:
            yield ds


@contextmanager
def open_dataset(path: str | Path) -> Iterator[DatasetReader]:
    """``rasterio.open(path)``; a remote href signed and under satcnn's GDAL configuration (io.remote);
    a STAC item's assets as one raster (``io.stac_vrt``)."""
    if not is_href(path):
        with rasterio.open(path) as ds:
            yield ds
        return
    with _open_remote(_href(path)) as ds:
        yield ds


def open_handle(path: str | Path) -> DatasetReader:
    """``rasterio.open(path)`` for a handle the caller keeps open; a remote href is signed and
    opened under satcnn's GDAL configuration (read it inside ``io.remote.gdal_env`` too)."""
    if not is_href(path):
        return rasterio.open(path)
    with gdal_env():
        try:
            return rasterio.open(signed(str(path)))
        except RasterioError as err:
            raise RasterError(f"cannot be read over the network: {err}", str(path)) from None


def check_raster(
    ds: DatasetReader,
    p: Path,
    *,
    bands: int | Sequence[str] | None = None,
    dtypes: Sequence[str] | None = None,
    min_size: int | None = None,
    require_crs: bool = True,
) -> RasterInfo:
    """``open_raster``'s checks on the open dataset ``ds`` of ``p``: its header, checked.

    Raises:
        RasterError: As ``open_raster``.
        RasterioError: The file cannot be read.
    """
    _check_complete(ds, p)
    info = RasterInfo(
        path=p,
        crs=ds.crs,
        transform=ds.transform,
        width=ds.width,
        height=ds.height,
        count=ds.count,
        dtype=ds.dtypes[0],
        nodata=ds.nodata,
        profile=dict(ds.profile),
        colorinterp=tuple(ds.colorinterp),
    )

    if require_crs and info.crs is None:
        raise RasterError(
            "has no coordinate reference system (CRS); assign one, e.g. "
            f"`rio edit-info --crs EPSG:<code> {p}`, so outputs can be georeferenced (commands with "
            "--allow-no-crs can work on its pixel grid instead)",
            p,
        )
    if bands is not None:
        check_band_count(p, info.colorinterp, info.count, bands)
    if dtypes is not None and info.dtype not in dtypes:
        raise RasterError(
            f"data type {info.dtype} is not supported; expected one of {', '.join(dtypes)}. "
            f"Convert it (e.g. `rio convert {p} converted.tif --dtype {dtypes[0]} --scale-ratio R`) to the "
            "type the model was trained on",
            p,
        )
    if min_size is not None and (info.height < min_size or info.width < min_size):
        raise RasterError(
            f"raster is {info.height} x {info.width} pixels (rows x columns), smaller than one "
            f"{min_size} x {min_size} window (the model's training patch, its smallest input); "
            "mosaic it with its neighbouring tiles into a larger raster first, e.g. "
            "`rio merge tiles/*.tif area.tif`",
            p,
        )
    logger.debug("opened %s: %d x %d, %d bands, %s", p, info.height, info.width, info.count, info.dtype)
    return info


def check_band_count(
    path: str | Path, colorinterp: Sequence[ColorInterp], count: int, bands: int | Sequence[str]
) -> None:
    """Raise unless a raster of ``count`` bands can feed a model reading its first ``bands``.

    It can with exactly that many bands, or more where every extra band is alpha (the mask).

    Raises:
        RasterError: naming ``path``, the counts and the fix.
    """
    expected = consumed_bands(bands, count)
    if not accepts_bands(colorinterp, expected):
        names = "" if isinstance(bands, int) else f" ({', '.join(bands)})"
        extra = " and the extra ones are not alpha" if count > expected else ""
        raise RasterError(
            f"model expects {expected} bands{names}; file has {count}{extra}. "
            "Select the bands with `satcnn infer --bands` (e.g. --bands 1,2,3,4 or --bands "
            "red,green,blue,nir) or use a model trained on these bands",
            path,
        )


def _check_complete(ds: rasterio.DatasetReader, path: Path) -> None:
    """Refuse a GeoTIFF cut short: its last block lies (partly) beyond the end of the file.

    Reads two header entries (the last block's offset and size), so a truncated download fails
    here, naming the file, instead of at some window deep into the run.
    """
    if ds.driver != "GTiff" or not ds.block_shapes or isinstance(path, Href):  # remote: a short read fails
        return
    bh, bw = ds.block_shapes[-1]
    last = f"{(ds.width - 1) // bw}_{(ds.height - 1) // bh}"
    offset = ds.get_tag_item(f"BLOCK_OFFSET_{last}", "TIFF", bidx=ds.count)
    size = ds.get_tag_item(f"BLOCK_SIZE_{last}", "TIFF", bidx=ds.count)
    if not offset or not size or int(offset) == 0:  # unknown, or a sparse (unwritten) block
        return
    end, length = int(offset) + int(size), path.stat().st_size
    if end > length:
        raise RasterError(
            f"is truncated: {length} bytes, but its header places pixel data up to byte {end}; "
            "the download or copy was cut short, fetch or export it again",
            path,
        )


def gdal_cache_env(cache_mb: int | None) -> rasterio.Env:
    """A rasterio environment whose GDAL block cache is at most ``cache_mb`` MB (``None``: GDAL's default).

    Streaming work over large rasters uses it so that memory stays flat: GDAL's default cache (5% of
    RAM) otherwise keeps most of a large raster's blocks. rasterio applies the setting process-wide.
    """
    return rasterio.Env(GDAL_CACHEMAX=cache_mb * 2**20) if cache_mb else rasterio.Env()
