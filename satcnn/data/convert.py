"""Convert non-georeferenced image/mask pairs (Massachusetts Roads PNGs) to GeoTIFFs.

The Massachusetts Roads release ships RGB PNG tiles and {0, 255} PNG masks without any
georeferencing. :func:`png_pair_to_geotiff` writes them as GeoTIFFs with a pixel-unit
transform ``Affine(resolution, 0, 0, 0, -resolution, 0)`` and **no CRS**. We chose "no CRS"
over a LOCAL_CS / engineering CRS because GDAL round-trips LOCAL_CS poorly (it is written as a
user-defined ProjectedCSTypeGeoKey, several readers drop or misread it, and torchgeo/rasterio
tools cannot reproject it anyway); ``crs is None`` is the honest, unambiguous signal that the
file is not georeferenced, and every conversion emits a :class:`NotGeoreferencedWarning`.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.errors import NotGeoreferencedWarning as _RioNotGeoreferencedWarning

from satcnn.errors import DataFormatError, RasterError, require_file
from satcnn.io.atomic import atomic_output

__all__ = ["NotGeoreferencedWarning", "png_pair_to_geotiff", "read_plain", "write_pair"]

log = logging.getLogger(__name__)


class NotGeoreferencedWarning(UserWarning):
    """A raster was written without a CRS: its coordinates are pixel units, not map units."""


def read_plain(path: Path, what: str) -> np.ndarray:
    """All bands of a (possibly non-georeferenced) raster GDAL reads (PNG, JPEG, TIFF), (bands, h, w).

    Raises:
        RasterError: GDAL cannot open or decode it, naming ``path``.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", _RioNotGeoreferencedWarning)
            with rasterio.open(path) as src:
                return src.read()
    except (rasterio.RasterioIOError, rasterio.errors.RasterioError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RasterError(f"cannot read {what}: {reason}", path) from exc


def _write(
    path: Path, data: np.ndarray, transform: Affine, descriptions: list[str], nodata: int | None = None
) -> None:
    count, height, width = data.shape
    profile = {
        "driver": "GTiff",
        "dtype": "uint8",
        "count": count,
        "height": height,
        "width": width,
        "crs": None,
        "transform": transform,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "deflate",
        "interleave": "pixel" if count > 1 else "band",
        "nodata": nodata,
    }
    with atomic_output(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", _RioNotGeoreferencedWarning)
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(data)
            for band, desc in enumerate(descriptions, start=1):
                dst.set_band_description(band, desc)


def write_pair(
    image: np.ndarray, mask: np.ndarray, out: Path, stem: str, resolution: float, nodata: int | None
) -> tuple[Path, Path]:
    """Write ``out/images/<stem>.tif`` and ``out/masks/<stem>.tif`` atomically: pixel-unit grid, no CRS.

    Args:
        image: uint8 (bands, h, w); 3 bands are described red/green/blue.
        mask: uint8 (1, h, w) road mask (0/1).
        out: output root.
        stem: the scene's name.
        resolution: pixel size recorded in the transform.
        nodata: the image's nodata value, or None.
    """
    transform = Affine(resolution, 0.0, 0.0, 0.0, -resolution, 0.0)
    if image.shape[0] == 3:
        descriptions = ["red", "green", "blue"]
    else:
        descriptions = [f"band_{i + 1}" for i in range(image.shape[0])]
    image_tif = out / "images" / f"{stem}.tif"
    mask_tif = out / "masks" / f"{stem}.tif"
    _write(image_tif, image, transform, descriptions, nodata)
    _write(mask_tif, mask, transform, ["road"])
    return image_tif, mask_tif


def png_pair_to_geotiff(
    image_png: str | Path,
    mask_png: str | Path,
    out_dir: str | Path,
    resolution: float = 1.0,
    nodata: int | None = None,
) -> tuple[Path, Path]:
    """Convert a non-georeferenced image/mask PNG pair to GeoTIFFs with a pixel-unit transform.

    Writes ``out_dir/images/<stem>.tif`` (the image's bands, uint8) and ``out_dir/masks/<stem>.tif``
    (1 band uint8, mask values > 0 become 1), where ``<stem>`` is the image file's stem with a
    trailing ``_sat`` removed (``train_10078660_15_sat.png`` -> ``train_10078660_15``). Both use
    ``Affine(resolution, 0, 0, 0, -resolution, 0)`` and no CRS; a :class:`NotGeoreferencedWarning`
    is emitted. Files are written atomically.

    Args:
        image_png: 8-bit PNG, usually RGB (3 bands, described red/green/blue); any format GDAL
            reads works.
        mask_png: single-band mask PNG (or RGB with equal bands, of which the first is used).
        out_dir: output root; ``images/`` and ``masks/`` are created.
        resolution: pixel size in (nominal) metres, e.g. 1.0 for Massachusetts Roads at 1500 px.
        nodata: the image's nodata value (0-255), recorded on the image GeoTIFF: a pixel whose
            bands all hold it is invalid (left out of training loss and metrics, written as
            nodata by inference). 255 marks the white no-data areas of Massachusetts Roads tiles.

    Returns:
        ``(image_tif, mask_tif)`` paths.

    Raises:
        InputFileNotFoundError: a PNG does not exist.
        RasterError: a PNG cannot be read, is not uint8, or image and mask sizes differ.
        DataFormatError: ``resolution`` is not positive.
    """
    image_path = require_file(image_png, "image PNG")
    mask_path = require_file(mask_png, "mask PNG")
    if not resolution > 0:
        raise DataFormatError(f"resolution must be > 0, got {resolution}")
    if nodata is not None and not 0 <= nodata <= 255:
        raise DataFormatError(f"nodata must be in 0-255 for an 8-bit image, got {nodata}")
    image = read_plain(image_path, "image")
    mask = read_plain(mask_path, "mask")
    if image.dtype != np.uint8:
        raise RasterError(f"image must be 8-bit, got {image.dtype}; rescale it to uint8 first", image_path)
    if image.shape[1:] != mask.shape[1:]:
        raise RasterError(
            f"mask size {mask.shape[2]}x{mask.shape[1]} differs from image size "
            f"{image.shape[2]}x{image.shape[1]} ({image_path.name}); pass the matching pair",
            mask_path,
        )
    stem = image_path.stem.removesuffix("_sat")
    image_tif, mask_tif = write_pair(
        image, (mask[:1] > 0).astype(np.uint8), Path(out_dir), stem, resolution, nodata
    )
    msg = (
        f"{image_tif} and {mask_tif} are not georeferenced: pixel-unit transform "
        f"(resolution {resolution}) and no CRS"
    )
    warnings.warn(msg, NotGeoreferencedWarning, stacklevel=2)
    log.warning(msg)
    return image_tif, mask_tif
