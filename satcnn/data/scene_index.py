"""Road scene files: find ``images/<name>.tif`` with ``masks/<name>.tif`` and check each pair.

Layout: ``root/images/<name>.tif`` (multi-band GeoTIFF) and ``root/masks/<name>.tif``
(1 band, non-zero = road) on the same pixel grid. The mask "intersects" the image by
construction: both must share CRS, transform and shape, checked up front. ``root`` may instead
be a STAC document whose items each carry an image and a label asset (:mod:`satcnn.data.scene_stac`);
their hrefs are read in place (:func:`satcnn.io.raster.open_dataset`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import rasterio
from rasterio.enums import ColorInterp

from satcnn.data.scene_stac import is_stac_root, stac_scene_pairs
from satcnn.errors import ConfigError, InputFileNotFoundError, RasterError
from satcnn.io.raster import open_dataset

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


def _scene_info(
    name: str, image_path: str | Path, mask_path: str | Path, allow_no_crs: bool = False, pair: str = ""
) -> SceneInfo:
    try:
        with open_dataset(image_path) as img, open_dataset(mask_path) as msk:
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
            pair = pair or f"image {image_path} and mask {mask_path}"
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


def find_scenes(
    root: str | Path,
    allow_no_crs: bool = False,
    image_asset: str | None = None,
    label_asset: str | None = None,
) -> list[SceneInfo]:
    """Find and check every ``images/<name>.tif`` with its ``masks/<name>.tif`` under ``root``,
    or every item's image and label asset when ``root`` is a STAC document (named by item id).

    Scenes without a CRS are refused unless ``allow_no_crs`` (their ``crs`` is then ``""``).

    Raises:
        InputFileNotFoundError: ``root``/``images`` missing, no images, or an image without mask.
        DataFormatError: a STAC document that cannot be read, or an item without an image or
            label asset (:func:`satcnn.data.scene_stac.stac_scene_pairs`).
        ConfigError: ``image_asset``/``label_asset`` given for a folder.
        RasterError: an image/mask pair differs in CRS, transform or shape; a mask with more
            than one band; an image without CRS; band count or dtype differing across scenes.
    """
    if is_stac_root(root):
        pairs = stac_scene_pairs(str(root), image_asset, label_asset)
        scenes = [_scene_info(p.name, p.image, p.label, allow_no_crs, p.described) for p in pairs]
        return _same_bands(scenes)
    if image_asset or label_asset:
        raise ConfigError(
            f"image_asset/label_asset name STAC assets; {root} is a folder of images/ and masks/"
        )
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
    return _same_bands(scenes)


def _same_bands(scenes: list[SceneInfo]) -> list[SceneInfo]:
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
