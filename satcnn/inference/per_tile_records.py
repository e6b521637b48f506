"""The records of one label per tile: true labels from per-class folders, predictions, metrics.

The run writes ``predictions.csv`` (``predictions.rank<r>.csv`` per shard): one row per tile of
this run, in input order, with the tile path, its true class (``label``, when known), the
predicted class and the probability of every class. When every tile comes from a per-class
folder (``--input root/`` with ``root/<class>/*.tif``; folder names are matched to the model's
classes with ``satcnn.data.class_names.match_class``, so ``roads`` is ``road``), the run also
writes ``metrics.json`` (accuracy, per-class precision, recall, F1 and support, the confusion
matrix) and ``confusion_matrix.png``. All are written atomically.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from satcnn.data.class_names import match_class
from satcnn.inference.report import TileResult
from satcnn.io.atomic import atomic_output, write_text_atomic
from satcnn.io.inputs import RASTER_SUFFIXES

logger = logging.getLogger(__name__)

__all__ = ["folder_labels", "tile_metrics", "write_per_tile_records"]


def _key(path: Path) -> str:
    return os.path.abspath(path)  # as resolve_inputs deduplicates: symlinked copies stay distinct


def folder_labels(specs: Sequence[str | Path], classes: Sequence[str]) -> dict[str, str]:
    """True classes of the tiles in per-class folders: ``{absolute tile path: class}``.

    A spec that is a folder holding sub-folders gives each sub-folder's rasters the class its
    name matches (``match_class``); a sub-folder that matches no class is reported once and its
    tiles stay unlabelled.
    """
    labels: dict[str, str] = {}
    for spec in specs:
        root = Path(spec).expanduser()
        if not root.is_dir():
            continue
        for sub in sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")):
            cls = match_class(sub.name, classes)
            if cls is None:
                logger.warning(
                    "%s: folder name matches none of the classes %s; no labels", sub, list(classes)
                )
                continue
            for tile in sub.iterdir():
                if tile.suffix.lower() in RASTER_SUFFIXES and not tile.name.startswith("."):
                    labels[_key(tile)] = cls
    return labels


def _predicted(r: TileResult) -> str:
    assert r.probabilities is not None
    return max(r.probabilities, key=r.probabilities.__getitem__)


def _write_predictions(path: Path, classes: list[str], rows: list[TileResult], labelled: bool) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["tile", *(["label"] if labelled else []), "predicted", *classes])
    for r in rows:
        assert r.probabilities is not None
        label = [r.label or ""] if labelled else []
        writer.writerow(
            [str(r.input), *label, _predicted(r), *(f"{r.probabilities[c]:.6f}" for c in classes)]
        )
    write_text_atomic(path, buf.getvalue())


def tile_metrics(classes: list[str], labels: Sequence[str], predicted: Sequence[str]) -> dict[str, Any]:
    """Accuracy, per-class precision, recall, F1 and support, and the confusion matrix (true by row).

    Computed from the confusion matrix by hand: importing torchmetrics (torchvision, dynamo) takes
    longer than a whole run over a patch folder. A ratio with a zero denominator is 0, as in
    torchmetrics and scikit-learn's ``zero_division=0``.
    """
    index = {c: i for i, c in enumerate(classes)}
    k = len(classes)
    target = np.array([index[c] for c in labels], np.int64)
    preds = np.array([index[c] for c in predicted], np.int64)
    matrix = np.bincount(target * k + preds, minlength=k * k).reshape(k, k)
    hits = np.diag(matrix).astype(np.float64)
    support, claimed = matrix.sum(axis=1), matrix.sum(axis=0)
    precision = np.divide(hits, claimed, out=np.zeros(k), where=claimed > 0)
    recall = np.divide(hits, support, out=np.zeros(k), where=support > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros(k), where=both > 0)
    return {
        "tiles": len(target),
        "accuracy": float(hits.sum() / max(len(target), 1)),
        "per_class": {
            c: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, c in enumerate(classes)
        },
        "classes": classes,
        "confusion_matrix": matrix.tolist(),
    }


def _write_figure(path: Path, matrix: list[list[int]], classes: list[str]) -> None:
    from satcnn.tasks.figures import close, confusion_matrix_figure

    fig = confusion_matrix_figure(np.asarray(matrix), classes, title="Per-tile confusion matrix")
    try:
        with atomic_output(path) as tmp:
            fig.savefig(tmp, dpi=100)
    finally:
        close(fig)


def write_per_tile_records(
    out_dir: Path, shard: tuple[int, int], classes: list[str], results: list[TileResult]
) -> tuple[Path | None, Path | None]:
    """Write ``predictions.csv`` and, for fully labelled tiles, ``metrics.json`` and the figure.

    Returns:
        The predictions and metrics paths (``None`` where not written).
    """
    rows = [r for r in results if r.status == "done" and r.probabilities is not None]
    if not rows:
        return None, None
    suffix = f".rank{shard[0]}" if shard[1] > 1 else ""
    labelled = all(r.label is not None for r in rows)
    predictions = out_dir / f"predictions{suffix}.csv"
    _write_predictions(predictions, classes, rows, labelled or any(r.label for r in rows))
    if not labelled:
        return predictions, None
    metrics = tile_metrics(classes, [str(r.label) for r in rows], [_predicted(r) for r in rows])
    metrics_path = out_dir / f"metrics{suffix}.json"
    write_text_atomic(metrics_path, json.dumps(metrics, indent=2) + "\n")
    _write_figure(out_dir / f"confusion_matrix{suffix}.png", metrics["confusion_matrix"], classes)
    logger.info("per-tile accuracy %.4f over %d tiles", metrics["accuracy"], metrics["tiles"])
    return predictions, metrics_path
