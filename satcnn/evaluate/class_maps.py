"""``satcnn evaluate classes``: class maps against label rasters or labelled patch folders."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from satcnn.evaluate.result import EvaluationResult

__all__ = ["evaluate_classes"]


def evaluate_classes(
    predictions: Sequence[Path],
    truths: Sequence[Path] | Path,
    out_dir: Path,
    *,
    class_names: Sequence[str] | None = None,
) -> EvaluationResult:
    """Score class maps against label rasters (one per map) or a labelled patch folder.

    Args:
        predictions: Class-map rasters.
        truths: Label rasters, one per class map, or one folder of class-named patch folders.
        out_dir: Folder for the metrics JSON/CSV and the confusion-matrix figure.
        class_names: Class names by index (default: from the class maps' tags, else indices).
    """
    raise NotImplementedError
