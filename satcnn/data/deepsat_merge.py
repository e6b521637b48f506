"""Merge DeepSat patch releases (Kaggle CSV rows, per-class GeoTIFF folders) into one patch folder.

The SAT-6 samples come as CSV rows (few road patches) and as per-class GeoTIFF folders (8 per
class, folder ``roads`` for the class ``road``). Training on all of them together needs one
layout: ``out/trn/<class>/*.tif`` and ``out/tst/<class>/*.tif``, which ``DeepSatDataModule``
reads with ``format: folder``. A CSV release keeps its own train/test split; folder patches all
go to training.
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from satcnn.data.deepsat import Split, detect_format
from satcnn.errors import DataFormatError, InputFileNotFoundError, require_file

__all__ = ["MergedPatches", "merge_patch_sets"]


@dataclass
class MergedPatches:
    """What :func:`merge_patch_sets` wrote.

    Attributes:
        root: The merged folder (``trn/`` and ``tst/``).
        classes: Class names in label order (the first CSV release's order, then new names).
        counts: Patches per split (``trn``, ``tst``) and class.
    """

    root: Path
    classes: list[str] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)


def _write_patch(path: Path, patch: np.ndarray) -> None:
    """One (28, 28, 4) uint8 patch as a GeoTIFF without georeferencing (as the SAT-6 folders)."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    data = np.ascontiguousarray(patch.transpose(2, 0, 1), dtype=np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(
            path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
            dtype="uint8", photometric="RGB", alpha="UNSPECIFIED",
        ) as dst:  # fmt: skip
            dst.write(data)


def _add(merged: MergedPatches, split: str, name: str) -> Path:
    if name not in merged.classes:
        merged.classes.append(name)
    counts = merged.counts.setdefault(split, {})
    counts[name] = counts.get(name, 0) + 1
    folder = merged.root / split / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _merge_csv(merged: MergedPatches, root: Path, tag: str, variant: str, cache: str | None) -> None:
    from satcnn.data.deepsat_csv import read_csv_release

    splits = read_csv_release(root, variant, cache)
    for name in splits.classes:
        if name not in merged.classes:
            merged.classes.append(name)
    pairs: tuple[tuple[str, Split], ...] = (("trn", splits.train), ("tst", splits.test))
    for split_name, split in pairs:
        images = np.asarray(split.images[np.arange(len(split))])
        for i, (image, label) in enumerate(zip(images, split.labels, strict=True)):
            folder = _add(merged, split_name, splits.classes[int(label)])
            _write_patch(folder / f"{tag}_{i:06d}.tif", image)


def _merge_folder(merged: MergedPatches, root: Path, tag: str, aliases: Mapping[str, str]) -> None:
    train_dir = next((root / n for n in ("trn", "train") if (root / n).is_dir()), root)
    class_dirs = sorted(p for p in train_dir.iterdir() if p.is_dir())
    if not class_dirs:
        raise InputFileNotFoundError("no class folders (expected <class>/*.tif or trn/<class>/*.tif)", root)
    for class_dir in class_dirs:
        name = aliases.get(class_dir.name, class_dir.name)
        for file in sorted(class_dir.glob("*.tif*")):
            folder = _add(merged, "trn", name)
            shutil.copyfile(file, folder / f"{tag}_{file.name}")


def merge_patch_sets(
    sources: Sequence[str | Path],
    out: str | Path,
    *,
    aliases: Mapping[str, str] | None = None,
    variant: str = "sat6",
    cache: str | None = None,
) -> MergedPatches:
    """Write every patch of ``sources`` (CSV folders and class folders) into one folder ``out``.

    Args:
        sources: Kaggle CSV folders and per-class GeoTIFF patch folders, in order.
        out: The merged folder; replaced if it exists.
        aliases: Folder name to class name (e.g. ``{"roads": "road"}``).
        variant: ``sat6`` or ``sat4`` (CSV file names and default class order).
        cache: Parsed-CSV cache folder (see ``DeepSatDataModule``).

    Raises:
        InputFileNotFoundError: A source does not exist or has no class folders.
        DataFormatError: A source is not a DeepSat release, or a patch is not 28x28x4 uint8.
    """
    root = Path(out)
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    merged = MergedPatches(root)
    for index, source in enumerate(sources):
        path = require_file(source, "DeepSat patch source")
        tag = f"s{index}"
        fmt = detect_format(path)
        if fmt == "csv":
            _merge_csv(merged, path, tag, variant, cache)
        elif fmt == "folder":
            _merge_folder(merged, path, tag, aliases or {})
        else:
            raise DataFormatError("expected a Kaggle CSV folder or a folder of class folders", path)
    return merged
