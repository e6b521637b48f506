"""``satcnn evaluate classes``: class maps against label rasters or labelled patch folders.

Class maps are ``satcnn infer`` outputs (uint8 class index, nodata 255, class names in the
``CLASS_NAMES`` tag) or any single-band integer raster of class indices. The truth is either

* label rasters on the class maps' grids (checked first: CRS, transform, size), whose nodata
  pixels do not count, streamed by windows; or
* a folder of labelled patches, ``ROOT/<class>/*.tif`` (the DeepSat folder layout of
  :func:`satcnn.data.deepsat.read_folder`; ``trn``/``tst`` levels are fine), scored by
  :mod:`satcnn.evaluate.patches`.

It reports accuracy, per-class precision, recall and F1, their macro means, and the confusion
matrix (torchmetrics' ``MulticlassConfusionMatrix``: true class by row), as ``metrics.json``,
``metrics.csv`` (per tile, then overall), ``per_class.csv``, ``confusion_matrix.csv`` and
``confusion_matrix.png``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.windows import Window

from satcnn.errors import ConfigError, DataFormatError
from satcnn.evaluate.align import check_aligned, expand_rasters, pair_up, pick_outputs
from satcnn.evaluate.class_scores import class_metrics, per_class_rows
from satcnn.evaluate.outputs import write_outputs
from satcnn.evaluate.result import EvaluationResult
from satcnn.io.output_tags import class_names
from satcnn.io.raster import open_dataset, open_raster
from satcnn.io.reader import WindowReader

__all__ = ["BLOCK", "class_names_of", "evaluate_classes", "is_patch_folder", "read_classes"]

log = logging.getLogger(__name__)

BLOCK = 1024
"""Window side for streaming class maps and label rasters."""


def class_names_of(maps: Sequence[Path], given: Sequence[str] | None) -> list[str]:
    """``given``, or the ``CLASS_NAMES`` tag the class maps share.

    Raises:
        ConfigError: no names given and a map has no tag, or two maps disagree.
        DataFormatError: a map's tag is not a JSON list of names.
    """
    if given:
        return list(given)
    names: list[str] | None = None
    for path in maps:
        these = class_names(path)
        if these is None:
            raise ConfigError("class map has no CLASS_NAMES tag; pass the class names (--classes)", path)
        if names is not None and these != names:
            raise ConfigError(f"class names {these} differ from {names} of {maps[0]}", path)
        names = these
    assert names is not None
    return names


def read_classes(
    reader: WindowReader, window: Window, classes: int, path: Path
) -> tuple[np.ndarray, np.ndarray]:
    """Class indices (int64) and validity of ``window``.

    Raises:
        DataFormatError: a valid pixel holds an index that is not a class.
    """
    data, valid = reader.read(window, dtype=reader.ds.dtypes[0])
    values = data[0].astype(np.int64)
    bad = valid & ((values < 0) | (values >= classes))
    if bad.any():
        raise DataFormatError(
            f"holds class index {int(values[bad][0])}, but there are {classes} classes (0-{classes - 1}); "
            "set the raster's nodata value for unlabelled pixels or pass the full class list (--classes)",
            path,
        )
    return values, valid


def is_patch_folder(path: Path) -> bool:
    """Whether ``path`` is a folder of class folders (rather than a folder of label rasters)."""
    return path.is_dir() and not any(f.suffix.lower() in (".tif", ".tiff") for f in path.iterdir())


def _score_pair(prediction: Path, truth: Path, classes: list[str]) -> np.ndarray:
    import torch
    from torchmetrics.classification import MulticlassConfusionMatrix

    matrix = MulticlassConfusionMatrix(num_classes=len(classes), validate_args=False)
    k = len(classes)
    with open_dataset(prediction) as pds, open_dataset(truth) as tds:
        pred_reader, truth_reader = WindowReader(pds, 1), WindowReader(tds, 1)
        for row in range(0, pds.height, BLOCK):
            for col in range(0, pds.width, BLOCK):
                window = Window(col, row, min(BLOCK, pds.width - col), min(BLOCK, pds.height - row))  # type: ignore[call-arg]
                pred, pred_valid = read_classes(pred_reader, window, k, prediction)
                true, true_valid = read_classes(truth_reader, window, k, truth)
                keep = pred_valid & true_valid
                if keep.any():
                    matrix.update(torch.from_numpy(pred[keep]), torch.from_numpy(true[keep]))
    return matrix.compute().numpy().astype(np.int64)


def _finish(
    matrix: np.ndarray,
    rows: list[dict[str, Any]],
    classes: list[str],
    out_dir: Path,
    settings: dict[str, Any],
    unit: str,
) -> EvaluationResult:
    from satcnn.tasks.figures import confusion_matrix_figure, per_class_scores_figure

    metrics = class_metrics(matrix, classes, unit)
    per_class = per_class_rows(matrix, classes)
    result = EvaluationResult(metrics=metrics, per_tile=rows, kind="classes")
    scores = {s: [float(np.nan_to_num(r[s])) for r in per_class] for s in ("precision", "recall", "f1")}
    figures = {
        "confusion_matrix": confusion_matrix_figure(matrix, classes, "Confusion matrix (evaluation)"),
        "per_class_scores": per_class_scores_figure(scores, classes, "Per-class scores (evaluation)"),
    }
    confusion_rows = [
        {"true": name, **dict(zip(classes, map(int, matrix[i]), strict=True))}
        for i, name in enumerate(classes)
    ]
    result.files = write_outputs(
        result,
        out_dir,
        settings=settings,
        figures=figures,
        extra={"classes": classes, "per_class": per_class, "confusion_matrix": matrix.tolist()},
        tables={"per_class": per_class, "confusion_matrix": confusion_rows},
    )
    return result


def evaluate_classes(
    predictions: Sequence[Path],
    truths: Sequence[Path] | Path,
    out_dir: Path,
    *,
    class_names: Sequence[str] | None = None,
) -> EvaluationResult:
    """Score class maps against label rasters (one per map) or a labelled patch folder.

    Args:
        predictions: Class-map rasters, or folders of them (``*.tif`` in name order).
        truths: Label rasters (or folders of them), one per class map in the same order, or one
            folder of class-named patch folders.
        out_dir: Folder for the metrics JSON/CSV files and the figures.
        class_names: Class names by index (default: the class maps' ``CLASS_NAMES`` tag).

    Returns:
        Overall metrics (pooled over all maps), per-map rows, the files written.

    Raises:
        InputFileNotFoundError, RasterError, DataFormatError, ConfigError: bad input, raised before
            anything is written; a misaligned pair names both files.
    """
    maps = pick_outputs(expand_rasters(predictions, "class map"), ("class_map",), "classes")
    for path in maps:
        open_raster(path, require_crs=False)
    classes = class_names_of(maps, class_names)
    truth_list = [truths] if isinstance(truths, Path | str) else [Path(t) for t in truths]
    if len(truth_list) == 1 and is_patch_folder(Path(truth_list[0])):
        from satcnn.evaluate.patches import score_patches

        matrix, rows = score_patches(maps, Path(truth_list[0]), classes)
        settings = {"truth": str(truth_list[0]), "classes": classes, "maps": len(maps)}
        return _finish(matrix, rows, classes, Path(out_dir), settings, "patches")
    pairs = pair_up(maps, expand_rasters(truth_list, "label"))
    for pred, truth in pairs:
        check_aligned(pred, truth)
    total = np.zeros((len(classes), len(classes)), np.int64)
    rows = []
    for pred, truth in pairs:
        matrix = _score_pair(pred, truth, classes)
        total += matrix
        pixels = int(matrix.sum())
        accuracy = float(np.trace(matrix) / pixels) if pixels else float("nan")
        rows.append({"prediction": str(pred), "truth": str(truth), "pixels": pixels, "accuracy": accuracy})
        log.info("%s: accuracy %.3f over %d pixels", pred.name, accuracy, pixels)
    settings = {"classes": classes, "maps": len(pairs)}
    return _finish(total, rows, classes, Path(out_dir), settings, "pixels")
