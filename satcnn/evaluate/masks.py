"""``satcnn evaluate roads``: road probability/mask rasters against truth rasters or centrelines."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from satcnn.evaluate.result import EvaluationResult

__all__ = ["evaluate_roads"]


def evaluate_roads(
    predictions: Sequence[Path],
    truths: Sequence[Path],
    out_dir: Path,
    *,
    threshold: float = 0.5,
    rho: int = 3,
    buffer_m: float | None = None,
) -> EvaluationResult:
    """Score road predictions against truth rasters or centreline vectors, per tile and overall.

    Args:
        predictions: Probability (float or uint8 scaled) or mask rasters, one per tile.
        truths: Truth road rasters, or centreline vectors (GeoJSON/GPKG), one per prediction.
        out_dir: Folder for the metrics JSON/CSV and figures.
        threshold: Road probability threshold.
        rho: Relaxation distance in pixels for relaxed precision/recall.
        buffer_m: Road width in metres for rasterising centreline vectors.
    """
    raise NotImplementedError
