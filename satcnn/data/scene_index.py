"""Road scene files: find ``images/<name>.tif`` with ``masks/<name>.tif`` and check each pair.

Layout: ``root/images/<name>.tif`` (multi-band GeoTIFF) and ``root/masks/<name>.tif``
(1 band, non-zero = road) on the same pixel grid. The mask "intersects" the image by
construction: both must share CRS, transform and shape, checked up front.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import rasterio
from rasterio.enums import ColorInterp

from satcnn.errors import InputFileNotFoundError, RasterError

logger = logging.getLogger(__name__)

__all__ = ["RASTER_SUFFIXES", "SceneInfo", "find_scenes"]

RASTER_SUFFIXES = (".tif", ".tiff")


@dataclass(frozen=True)
class SceneInfo:
    """An image/mask pair checked to share one pixel grid.

    ``colorinterp`` is the image's colour interpretation per band (the alpha rule of
    :func:`satcnn.io.reader.alpha_mask_band` needs it). ``band_indexes`` are the 1-based image
    bands the model reads, in order, once a DataModule has resolved its ``bands`` (empty: the
    first bands).
    """

    name: str
    image_path: str
    mask_path: str
    crs_wkt: str
    transform: tuple[float, ...]  # affine a, b, c, d, e, f
    height: int
    width: int
    count: int
    dtype: str
    colorinterp: tuple[ColorInterp, ...] = ()
    band_indexes: tuple[int, ...] = ()


def _scene_info(name: str, image_path: Path, mask_path: Path, allow_no_crs: bool = False) -> SceneInfo:
    try:
        with rasterio.open(image_path) as img, rasterio.open(mask_path) as msk:
            if img.crs is None and not allow_no_crs:
                raise RasterError(
                    "image has no CRS; write one (e.g. rio edit-info --crs EPSG:xxxx), or set "
                    "allow_no_crs: true for pixel-unit scenes such as converted Massachusetts Roads PNGs",
                    image_path,
                )
            if img.crs is None:
                logger.warning("%s has no CRS: patch bounds are in pixel units of its transform", image_path)
            if msk.count != 1:
                raise RasterError(f"mask must have 1 band, found {msk.count}", mask_path)
            pair = f"image {image_path} and mask {mask_path}"
            if msk.crs != img.crs:
                raise RasterError(
                    f"{pair} have different CRS ({img.crs} vs {msk.crs}); "
                    "reproject the mask onto the image grid"
                )
            if (msk.height, msk.width) != (img.height, img.width):
                raise RasterError(
                    f"{pair} have different shapes ({img.height}x{img.width} vs {msk.height}x{msk.width}); "
                    "the mask must be on the image's pixel grid"
                )
            if not msk.transform.almost_equals(img.transform, precision=1e-6 * abs(img.transform.a)):
                raise RasterError(
                    f"{pair} have different transforms/resolution ({tuple(img.transform)[:6]} vs "
                    f"{tuple(msk.transform)[:6]}); the mask must be on the image's pixel grid"
                )
            if len(set(img.dtypes)) != 1:
                raise RasterError(f"image bands have mixed dtypes {img.dtypes}", image_path)
            return SceneInfo(
                name=name,
                image_path=str(image_path),
                mask_path=str(mask_path),
                crs_wkt=img.crs.to_wkt() if img.crs is not None else "",
                transform=tuple(img.transform)[:6],
                height=img.height,
                width=img.width,
                count=img.count,
                dtype=img.dtypes[0],
                colorinterp=tuple(img.colorinterp),
            )
    except rasterio.errors.RasterioIOError as exc:
        raise RasterError(f"cannot read {image_path} or {mask_path}: {exc}") from exc


def find_scenes(root: str | Path, allow_no_crs: bool = False) -> list[SceneInfo]:
    """Find and check every ``images/<name>.tif`` with its ``masks/<name>.tif`` under ``root``.

    Scenes without a CRS are refused unless ``allow_no_crs`` (their ``crs`` is then ``""``).

    Raises:
        InputFileNotFoundError: ``root``/``images`` missing, no images, or an image without mask.
        RasterError: an image/mask pair differs in CRS, transform or shape; a mask with more
            than one band; an image without CRS; band count or dtype differing across scenes.
    """
    root = Path(root)
    image_dir = root / "images"
    if not image_dir.is_dir():
        raise InputFileNotFoundError(
            "scene folder has no images/ subfolder (expected images/ and masks/)", root
        )
    images = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in RASTER_SUFFIXES)
    if not images:
        raise InputFileNotFoundError("no scenes found: no *.tif files in the images/ folder", image_dir)
    scenes = []
    for image_path in images:
        mask_path = root / "masks" / image_path.name
        if not mask_path.exists():
            raise InputFileNotFoundError(
                f"mask for image {image_path} not found; add masks/{image_path.name}", mask_path
            )
        scenes.append(_scene_info(image_path.stem, image_path, mask_path, allow_no_crs))
    first = scenes[0]
    for s in scenes[1:]:
        if s.count != first.count:
            raise RasterError(
                f"band count differs across scenes: {first.image_path} has {first.count}, "
                f"{s.image_path} has {s.count}; all scenes must have the same bands"
            )
        if s.dtype != first.dtype:
            raise RasterError(
                f"dtype differs across scenes: {first.image_path} is {first.dtype}, "
                f"{s.image_path} is {s.dtype}"
            )
    return scenes
