"""Import Mnih-style road pairs (``sat/`` + ``map/``, PNG, JPEG or TIFF) as scenes.

A Mnih-style folder (Massachusetts Roads, the layout of V. Mnih's release) holds RGB images in
``sat/`` and road labels in ``map/``, matched by file stem (``sat/10078660_15.tiff`` with
``map/10078660_15.tif``). :func:`import_roads` turns it into ``out/images/<stem>.tif`` and
``out/masks/<stem>.tif`` that :class:`satcnn.data.RoadSceneDataModule` reads:

* labels are thresholded (``label >= threshold`` is road, default 128), so lossy JPEG re-encodes
  holding {0, 1, 254, 255} become the exact mask; a label with many mid-grey values is not a
  mask and is refused;
* the dataset's white no-data area (all three bands 255, at least :data:`WHITE_SHARE` of the
  tile) is detected and recorded as the image's nodata value 255: those pixels are invalid, so
  training loss, metrics and inference outputs leave them out. The mask stays 0/1 there (a mask
  value of 255 would read as road);
* the pixel size is set (default 1.0 m, Massachusetts' native) on a pixel-unit grid without CRS
  (:mod:`satcnn.data.convert`).

Every pair is checked and written into a hidden staging folder first; only when all pairs pass
are the files moved into place, so a bad pair leaves nothing half-written.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from satcnn.data.convert import read_plain, write_pair
from satcnn.errors import DataFormatError, RasterError
from satcnn.io.atomic import publish

__all__ = [
    "IMAGE_SUFFIXES",
    "MID_SHARE",
    "WHITE_SHARE",
    "ImportedSplit",
    "find_pairs",
    "import_roads",
    "import_tree",
    "label_to_mask",
]

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
# A label is a mask when at most this share of its pixels is mid-grey (16-239): JPEG ringing stays far below.
MID_SHARE = 0.01
_NEAR = 16
# A tile has a white no-data area when at least this share of it is white in all three bands
# (the train tiles: 23-50 %); a few saturated roof pixels in a JPEG do not count.
WHITE_SHARE = 0.001


@dataclass(frozen=True)
class ImportedSplit:
    """One imported folder: where it went and what it held."""

    out: Path
    stems: list[str]
    with_nodata: int


def _by_stem(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            if path.stem in found:
                raise DataFormatError(f"{path}: two files named {path.stem} in {folder}; keep one")
            found[path.stem] = path
    return found


def find_pairs(src: Path) -> list[tuple[str, Path, Path]]:
    """``(stem, image, label)`` for every ``src/sat/<stem>.*`` with its ``src/map/<stem>.*``.

    Raises:
        DataFormatError: ``sat/`` or ``map/`` is missing or empty, or a file has no partner.
    """
    sat, lab = src / "sat", src / "map"
    for folder in (sat, lab):
        if not folder.is_dir():
            raise DataFormatError(f"{folder}: not a folder; a Mnih-style folder holds sat/ and map/")
    images, labels = _by_stem(sat), _by_stem(lab)
    if not images:
        raise DataFormatError(f"{sat}: no PNG, JPEG or TIFF images")
    for stem, path in images.items():
        if stem not in labels:
            raise DataFormatError(f"{path}: no label {lab}/{stem}.* for this image")
    for stem, path in labels.items():
        if stem not in images:
            raise DataFormatError(f"{path}: no image {sat}/{stem}.* for this label")
    return [(stem, images[stem], labels[stem]) for stem in sorted(images)]


def label_to_mask(label: np.ndarray, threshold: int, path: Path) -> np.ndarray:
    """A (bands, h, w) uint8 label as a (1, h, w) 0/1 mask: ``label >= threshold`` is road.

    Raises:
        RasterError: the label is not 8-bit, or more than :data:`MID_SHARE` of it is mid-grey.
    """
    if label.dtype != np.uint8:
        raise RasterError(f"label is {label.dtype}, not an 8-bit mask", path)
    band = label[0]
    mid = (band >= _NEAR) & (band < 256 - _NEAR)
    share = float(mid.mean())
    if share > MID_SHARE:
        shown = ", ".join(str(v) for v in np.unique(band[mid])[:5])
        raise RasterError(
            f"not a mask: {share:.1%} of its pixels are mid-grey (e.g. {shown}); expected near 0 and 255",
            path,
        )
    return (band >= threshold).astype(np.uint8)[None]


def _convert(
    stem: str,
    image_path: Path,
    label_path: Path,
    stage: Path,
    threshold: int,
    resolution: float,
    nodata_white: bool,
) -> bool:
    image = read_plain(image_path, "image")
    label = read_plain(label_path, "label")
    if image.dtype != np.uint8:
        raise RasterError(f"image is {image.dtype}; expected 8-bit RGB", image_path)
    if image.shape[1:] != label.shape[1:]:
        raise RasterError(
            f"label is {label.shape[2]}x{label.shape[1]} but its image {image_path.name} is "
            f"{image.shape[2]}x{image.shape[1]}",
            label_path,
        )
    mask = label_to_mask(label, threshold, label_path)
    white = (
        nodata_white and image.shape[0] >= 3 and float((image[:3] == 255).all(axis=0).mean()) >= WHITE_SHARE
    )
    write_pair(image, mask, stage, stem, resolution, 255 if white else None)
    return white


def import_roads(
    src: str | Path,
    out: str | Path,
    threshold: int = 128,
    resolution: float = 1.0,
    nodata_white: bool = True,
) -> ImportedSplit:
    """Convert the Mnih-style folder ``src`` into ``out/images/*.tif`` and ``out/masks/*.tif``.

    Args:
        src: folder with ``sat/`` and ``map/``.
        out: output root (created).
        threshold: label values >= it are road.
        resolution: pixel size in metres.
        nodata_white: record 255 as the image's nodata where a tile has pixels white in all three bands.

    Returns:
        The output folder, the scene names and how many scenes got a nodata value.

    Raises:
        DataFormatError: a missing partner, an unreadable file, a size mismatch or a label that is
            not a mask, naming the file; nothing is written then.
    """
    pairs = find_pairs(Path(src))
    root = Path(out)
    created = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".import-", dir=root))
    try:
        with_nodata = sum(
            _convert(stem, image, label, stage, threshold, resolution, nodata_white)
            for stem, image, label in pairs
        )
        for sub in ("images", "masks"):
            (root / sub).mkdir(exist_ok=True)
            for stem, _, _ in pairs:
                publish(stage / sub / f"{stem}.tif", root / sub / f"{stem}.tif")
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        if created:
            shutil.rmtree(root, ignore_errors=True)
        raise
    shutil.rmtree(stage, ignore_errors=True)
    log.info("imported %d pairs from %s into %s", len(pairs), src, root)
    return ImportedSplit(root, [stem for stem, _, _ in pairs], with_nodata)


def import_tree(
    src: str | Path, out: str | Path, threshold: int = 128, resolution: float = 1.0, nodata_white: bool = True
) -> list[ImportedSplit]:
    """:func:`import_roads` on ``src`` itself when it holds ``sat/``, else on each split folder in it.

    ``src/train/{sat,map}``, ``src/valid/...`` become ``out/train/{images,masks}``, ``out/valid/...``.

    Raises:
        DataFormatError: ``src`` holds neither ``sat/`` nor split folders with ``sat/``, or a pair is bad.
    """
    root = Path(src)
    if not root.is_dir():
        raise DataFormatError(f"{root}: not a folder")
    if (root / "sat").is_dir():
        return [import_roads(root, out, threshold, resolution, nodata_white)]
    splits = sorted(p for p in root.iterdir() if (p / "sat").is_dir())
    if not splits:
        raise DataFormatError(f"{root}: no sat/ and map/ folders in it or in its subfolders")
    return [
        import_roads(split, Path(out) / split.name, threshold, resolution, nodata_white) for split in splits
    ]
