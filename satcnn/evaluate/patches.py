"""Class maps against a folder of labelled patches, ``ROOT/<class>/*.tif`` (folder name = class).

Each patch is scored once, by the first class map (in the order given) that has a valid value for it:

* a georeferenced patch: the class-map pixel under the patch's centre (reprojected to the map's
  CRS when they differ);
* a patch without a CRS (the SAT-6 sample patches): the class map with the same file stem (what
  ``satcnn infer`` writes for it), by the most common valid class in that map.

Patches no map covers, or only with nodata, are counted as ``unscored``, not as errors.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.io import DatasetReader
from rasterio.warp import transform as warp_points
from rasterio.windows import Window

from satcnn.errors import DataFormatError, InputFileNotFoundError
from satcnn.evaluate.class_maps import read_classes
from satcnn.io.reader import WindowReader

__all__ = ["list_patches", "score_patches"]

log = logging.getLogger(__name__)


def list_patches(root: Path, classes: Sequence[str]) -> list[tuple[Path, int]]:
    """Every ``*.tif`` under ``root`` with the class index of its folder.

    Raises:
        InputFileNotFoundError: no patches.
        DataFormatError: a patch's folder is not one of ``classes``.
    """
    found = []
    for path in sorted(root.rglob("*.tif*")):
        if not path.is_file():
            continue
        name = path.parent.name
        if name not in classes:
            raise DataFormatError(
                f"patch folder {name!r} is not a class of the class maps ({', '.join(classes)}); "
                "name each folder after its class or pass the class list (--classes)",
                path,
            )
        found.append((path, list(classes).index(name)))
    if not found:
        raise InputFileNotFoundError("no labelled patches (expected ROOT/<class>/*.tif)", root)
    return found


def _centre_class(
    patch: DatasetReader, maps: list[tuple[Path, DatasetReader, WindowReader]], k: int
) -> tuple[int, int] | None:
    """``(map index, class)`` under the patch centre from the first map with a valid pixel there."""
    x, y = patch.transform * (patch.width / 2, patch.height / 2)
    for i, (path, ds, reader) in enumerate(maps):
        if ds.crs is None:
            continue
        xs, ys = warp_points(patch.crs, ds.crs, [x], [y]) if ds.crs != patch.crs else ([x], [y])
        col, row = ~ds.transform * (xs[0], ys[0])
        r, c = int(np.floor(row)), int(np.floor(col))
        if not (0 <= r < ds.height and 0 <= c < ds.width):
            continue
        values, valid = read_classes(reader, Window(c, r, 1, 1), k, path)  # type: ignore[call-arg]
        if valid[0, 0]:
            return i, int(values[0, 0])
    return None


def _stem_class(
    stem: str, maps: list[tuple[Path, DatasetReader, WindowReader]], k: int
) -> tuple[int, int] | None:
    """``(map index, most common valid class)`` of the first map named like the patch."""
    for i, (path, ds, reader) in enumerate(maps):
        if path.stem != stem:
            continue
        values, valid = read_classes(reader, Window(0, 0, ds.width, ds.height), k, path)  # type: ignore[call-arg]
        if valid.any():
            return i, int(np.bincount(values[valid], minlength=k).argmax())
    return None


def score_patches(
    maps: Sequence[Path], root: Path, classes: Sequence[str]
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Confusion matrix (true by row) over the patches under ``root``, and one row per class map.

    Raises:
        DataFormatError: a patch is unreadable, two patches without a CRS share a file stem that
            names a class map, or no patch lands on a class map.
    """
    k = len(classes)
    patches = list_patches(root, classes)
    map_stems = {p.stem for p in maps}
    matrix = np.zeros((k, k), np.int64)
    hits = np.zeros((len(maps), 2), np.int64)  # patches scored, correct
    seen: dict[str, Path] = {}
    unscored = 0
    with ExitStack() as stack:
        opened = []
        for path in maps:
            ds = stack.enter_context(rasterio.open(path))
            opened.append((path, ds, WindowReader(ds, 1)))
        for path, label in patches:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", NotGeoreferencedWarning)
                    with rasterio.open(path) as patch:
                        if patch.crs is not None:
                            found = _centre_class(patch, opened, k)
                        else:
                            if path.stem in map_stems and path.stem in seen:
                                raise DataFormatError(
                                    f"shares its file stem with {seen[path.stem]}; patches without a CRS are "
                                    "matched to class maps by stem, so give them unique names",
                                    path,
                                )
                            seen[path.stem] = path
                            found = _stem_class(path.stem, opened, k)
            except RasterioError as err:
                raise DataFormatError(f"cannot read patch: {err}", path) from None
            if found is None:
                unscored += 1
                continue
            index, predicted = found
            matrix[label, predicted] += 1
            hits[index] += (1, int(predicted == label))
    if not matrix.sum():
        raise DataFormatError(
            f"none of {len(patches)} patches lands on a class map: a georeferenced patch needs a map with a "
            "valid pixel under its centre, a patch without a CRS a map with its file stem",
            root,
        )
    if unscored:
        log.warning(
            "%s: %d of %d patches lie on no class map (or on nodata) and are not scored",
            root,
            unscored,
            len(patches),
        )
    rows = [
        {
            "prediction": str(p),
            "truth": str(root),
            "patches": int(n),
            "accuracy": float(c / n) if n else float("nan"),
        }
        for p, (n, c) in zip(maps, hits, strict=True)
    ]
    rows.append({"prediction": "unscored", "truth": str(root), "patches": unscored})
    return matrix, rows
