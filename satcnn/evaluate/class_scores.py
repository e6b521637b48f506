"""Scores of a class-map evaluation from its confusion matrix (true class by row, predicted by column)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["class_metrics", "per_class_rows"]


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b else math.nan


def per_class_rows(matrix: np.ndarray, classes: Sequence[str]) -> list[dict[str, Any]]:
    """Precision, recall, F1 and support per class (NaN where a ratio has no denominator)."""
    rows = []
    for i, name in enumerate(classes):
        tp = float(matrix[i, i])
        predicted, actual = float(matrix[:, i].sum()), float(matrix[i, :].sum())
        precision, recall = _ratio(tp, predicted), _ratio(tp, actual)
        rows.append(
            {
                "class": name,
                "precision": precision,
                "recall": recall,
                "f1": _ratio(2 * tp, predicted + actual),
                "support": int(actual),
                "predicted": int(predicted),
            }
        )
    return rows


def class_metrics(matrix: np.ndarray, classes: Sequence[str], unit: str = "pixels") -> dict[str, float]:
    """Accuracy, macro precision/recall/F1 (over classes where defined), ``<score>_<class>`` entries
    and the count of scored ``unit``s (pixels or patches)."""
    total = float(matrix.sum())
    rows = per_class_rows(matrix, classes)
    metrics: dict[str, float] = {"accuracy": _ratio(float(np.trace(matrix)), total), unit: total}
    for score in ("precision", "recall", "f1"):
        values = [r[score] for r in rows if not math.isnan(r[score])]
        metrics[f"macro_{score}"] = float(np.mean(values)) if values else math.nan
    for r in rows:
        for score in ("precision", "recall", "f1", "support"):
            metrics[f"{score}_{r['class']}"] = float(r[score])
    return metrics
