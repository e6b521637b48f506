"""Log an evaluation as an MLflow run tagged with the inference and training runs it scores."""

from __future__ import annotations

from collections.abc import Mapping

from satcnn.evaluate.result import EvaluationResult

__all__ = ["log_evaluation"]


def log_evaluation(
    result: EvaluationResult,
    *,
    tracking_uri: str | None,
    experiment: str,
    tags: Mapping[str, str] | None = None,
    parent_run_id: str | None = None,
) -> str:
    """Log ``result``'s metrics and files as a run in ``experiment``; returns the run id.

    Args:
        result: The evaluation to log.
        tracking_uri: MLflow tracking URI (None: MLflow's default).
        experiment: Experiment name (created if missing).
        tags: Extra run tags (e.g. the inference and training run ids).
        parent_run_id: Nest the run under this one.
    """
    raise NotImplementedError
