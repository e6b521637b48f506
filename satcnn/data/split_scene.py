"""Cut one image/mask scene into row or column bands, each a scene of its own, for held-out evaluation.

A single real tile with a road mask (a SpaceNet chip, a Massachusetts Roads pair) is all many
users have to start with. Training on its top rows (or left columns) and scoring on its bottom
rows (right columns) keeps the test pixels out of training: :func:`split_scene` writes each band
as its own GeoTIFF pair on the source's grid (the band's window transform, CRS, nodata, band
descriptions and colour interpretation kept), so ``satcnn fit`` can name them as
``val_scenes``/``test_scenes`` and ``satcnn evaluate`` can compare outputs with the bands' masks.
"""

from __future__ import annotations

import contextlib
import logging
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import rasterio
from rasterio.enums import MaskFlags
from rasterio.errors import NotGeoreferencedWarning
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from satcnn.errors import DataFormatError, RasterError, require_file
from satcnn.io.atomic import atomic_output

__all__ = ["parse_parts", "split_scene"]

log = logging.getLogger(__name__)


def parse_parts(text: str) -> list[tuple[str, float]]:
    """``"train=0.6,val=0.2,test=0.2"`` -> ``[("train", 0.6), ("val", 0.2), ("test", 0.2)]``.

    Raises:
        DataFormatError: A malformed item, a repeated name, or shares that do not sum to 1.
    """
    parts: list[tuple[str, float]] = []
    for item in text.split(","):
        name, sep, share = item.partition("=")
        name = name.strip()
        try:
            value = float(share)
        except ValueError:
            value = -1.0
        if not sep or not name or not name.isidentifier() or not (value > 0 and math.isfinite(value)):
            raise DataFormatError(
                f"parts must look like train=0.6,val=0.2,test=0.2; got {item!r} in {text!r}"
            )
        parts.append((name, value))
    names = [n for n, _ in parts]
    if len(set(names)) != len(names):
        raise DataFormatError(f"parts names repeat: {text!r}")
    total = sum(value for _, value in parts)
    if not math.isclose(total, 1.0, abs_tol=1e-6):  # a typo, not a ratio: rescaling would hide it
        raise DataFormatError(f"parts must sum to 1, got {total:g} in {text!r}")
    return parts


def _cuts(length: int, parts: Sequence[tuple[str, float]], path: Path) -> list[tuple[str, int, int]]:
    total = sum(share for _, share in parts)
    edges = [0]
    acc = 0.0
    for _, share in parts:
        acc += share
        edges.append(round(length * acc / total))
    bands = [(name, edges[i], edges[i + 1] - edges[i]) for i, (name, _) in enumerate(parts)]
    short = [name for name, _, rows in bands if rows < 1]
    if short:
        raise RasterError(f"{length} pixels are too few to give every part one (empty: {short})", path)
    return bands


def _write_band(src: Any, window: Window, path: Path) -> None:
    profile = src.profile.copy()
    block = 256 if min(window.height, window.width) >= 256 else None
    profile.update(
        height=int(window.height),
        width=int(window.width),
        transform=window_transform(window, src.transform),
        compress="deflate",
        tiled=block is not None,
    )
    if block is not None:
        profile.update(blockxsize=block, blockysize=block)
    else:
        profile.pop("blockxsize", None)
        profile.pop("blockysize", None)
    if str(profile.get("photometric", "")).lower() not in ("", "rgb", "minisblack"):
        profile.pop("photometric")  # YCbCr belongs to JPEG compression, not to deflate
    flags = src.mask_flag_enums[0]
    internal_mask = MaskFlags.per_dataset in flags and MaskFlags.alpha not in flags
    with atomic_output(path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        dst.write(src.read(window=window))  # a band at a time would bound memory; tiles are small
        if internal_mask:  # an internal or .msk mask travels with the pixels (nodata, alpha already do)
            dst.write_mask(src.read_masks(1, window=window))
        dst.colorinterp = src.colorinterp
        for band, desc in enumerate(src.descriptions, start=1):
            if desc:
                dst.set_band_description(band, desc)


def _open(path: Path) -> Any:
    try:
        return rasterio.open(path)
    except rasterio.RasterioIOError as exc:
        raise RasterError(f"cannot read: {exc}", path) from exc


def split_scene(
    image: str | Path,
    mask: str | Path,
    out_dir: str | Path,
    parts: Sequence[tuple[str, float]] = (("train", 0.6), ("val", 0.2), ("test", 0.2)),
    axis: Literal["rows", "cols"] = "rows",
) -> dict[str, tuple[Path, Path]]:
    """Write ``out_dir/images/<stem>_<part>.tif`` and ``out_dir/masks/<stem>_<part>.tif`` per part.

    Parts are consecutive bands of rows from the top (``axis="rows"``) or of columns from the left
    (``"cols"``), in the order given, sized in proportion to their shares (rounded; every part
    gets at least one row or column). Each file is the
    source's pixels on the source's grid (its window transform), written atomically.

    Args:
        image: image raster (any bands and type).
        mask: road mask on the same grid (same size and transform).
        out_dir: output root; ``images/`` and ``masks/`` are created.
        parts: ``(name, share)`` pairs, top to bottom (left to right).
        axis: ``rows`` or ``cols``.

    Returns:
        ``{part: (image_tif, mask_tif)}``.

    Raises:
        InputFileNotFoundError: a file does not exist.
        RasterError: a file cannot be read, the grids differ, or a part would be empty.
    """
    image_path = require_file(image, "image")
    mask_path = require_file(mask, "mask")
    stem = image_path.stem
    out = Path(out_dir)
    written: dict[str, tuple[Path, Path]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # Massachusetts pairs have no CRS
        with contextlib.ExitStack() as stack:
            img, msk = (stack.enter_context(_open(p)) for p in (image_path, mask_path))
            grid = (img.height, img.width, img.transform, img.crs)
            if (msk.height, msk.width, msk.transform, msk.crs) != grid:
                raise RasterError(
                    f"mask grid {msk.width}x{msk.height} {tuple(msk.transform)[:6]} {msk.crs} differs "
                    f"from image {image_path.name} grid {img.width}x{img.height} "
                    f"{tuple(img.transform)[:6]} {img.crs}",
                    mask_path,
                )
            length = img.height if axis == "rows" else img.width
            for name, start, size in _cuts(length, parts, image_path):
                if axis == "rows":
                    window = Window(0, start, img.width, size)  # type: ignore[call-arg]
                else:
                    window = Window(start, 0, size, img.height)  # type: ignore[call-arg]
                pair = (out / "images" / f"{stem}_{name}.tif", out / "masks" / f"{stem}_{name}.tif")
                _write_band(img, window, pair[0])
                _write_band(msk, window, pair[1])
                written[name] = pair
                log.info("%s: %s %d-%d -> %s", name, axis, start, start + size, pair[0])
    return written
