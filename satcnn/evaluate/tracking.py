"""Log an evaluation as an MLflow run tagged with the inference and training runs it scores.

The run goes through ``satcnn.tracking``'s safeguards (the store-creation lock, a client that
retries while SQLite is locked, a race-safe get-or-create of the experiment). Its tags link it to
the runs it scores (:data:`INFERENCE_RUN_TAG`, :data:`TRAINING_RUN_TAG`); nested under a
pipeline's parent run with MLflow's own ``mlflow.parentRunId`` tag.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

from satcnn.errors import ConfigError
from satcnn.evaluate.result import EvaluationResult

__all__ = [
    "EXPERIMENT",
    "INFERENCE_RUN_TAG",
    "KIND_TAG",
    "PARENT_TAG",
    "TRAINING_RUN_TAG",
    "check_runs",
    "log_evaluation",
    "metric_key",
]

log = logging.getLogger(__name__)

EXPERIMENT = "satcnn-evaluation"
INFERENCE_RUN_TAG = "satcnn.inference_run_id"
TRAINING_RUN_TAG = "satcnn.training_run_id"
KIND_TAG = "satcnn.evaluation"
PARENT_TAG = "mlflow.parentRunId"  # MLflow's own nesting tag


def metric_key(name: str) -> str:
    """``name`` with characters MLflow refuses in a metric key replaced by ``_``."""
    return re.sub(r"[^\w\-. /]", "_", name)


def _client(tracking_uri: str | None) -> tuple[Any, str]:
    from mlflow import MlflowClient

    from satcnn.tracking.client import RetryingClient, store_init_lock
    from satcnn.tracking.store import default_tracking_uri

    store = tracking_uri or default_tracking_uri()
    with store_init_lock(store):
        return RetryingClient(MlflowClient(tracking_uri=store)), store


def check_runs(run_ids: Sequence[str], *, tracking_uri: str | None) -> None:
    """Check that every run in ``run_ids`` exists in the store, before an evaluation is computed.

    Raises:
        ConfigError: a run is not in the store (the message names the id and the store).
    """
    from mlflow.exceptions import MlflowException

    if not run_ids:
        return
    client, store = _client(tracking_uri)
    for run_id in run_ids:
        try:
            client.get_run(run_id)
        except MlflowException:
            raise ConfigError(
                f"MLflow run {run_id!r} not found in {store}; check the run id and --tracking-uri"
            ) from None


def log_evaluation(
    result: EvaluationResult,
    *,
    tracking_uri: str | None,
    experiment: str,
    tags: Mapping[str, str] | None = None,
    parent_run_id: str | None = None,
) -> str:
    """Log ``result``'s overall metrics and files as a run in ``experiment``; returns the run id.

    Metrics that are NaN (undefined, e.g. precision with nothing predicted) are left out; the
    files (metrics JSON/CSV and figures) are the run's artifacts. A run whose logging fails is
    marked FAILED and the error raised.

    Args:
        result: The evaluation to log.
        tracking_uri: MLflow tracking URI (None: ``$MLFLOW_TRACKING_URI`` or ``./mlflow.db``).
        experiment: Experiment name (created if missing).
        tags: Extra run tags, e.g. ``{INFERENCE_RUN_TAG: id, TRAINING_RUN_TAG: id}``.
        parent_run_id: Nest the run under this one (``mlflow.parentRunId``).
    """
    from mlflow.entities import Metric, Param

    from satcnn.tracking.client import get_or_create_experiment

    client, store = _client(tracking_uri)
    exp_id = get_or_create_experiment(client, experiment, None)
    run_tags = {KIND_TAG: result.kind, **(tags or {})}
    if parent_run_id:
        run_tags[PARENT_TAG] = parent_run_id
    run = client.create_run(exp_id, tags=run_tags, run_name=f"evaluate-{result.kind}")
    run_id = str(run.info.run_id)
    try:
        now = int(time.time() * 1000)
        metrics = [
            Metric(metric_key(k), float(v), now, 0)
            for k, v in result.metrics.items()
            if math.isfinite(float(v))
        ]
        params = [Param("tiles", str(len(result.per_tile)))]
        client.log_batch(run_id, metrics=metrics, params=params)
        for path in result.files:
            client.log_artifact(run_id, str(path), artifact_path="evaluation")
        client.set_terminated(run_id, "FINISHED")
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    log.info("evaluation logged as MLflow run %s in %s (experiment %s)", run_id, store, experiment)
    return run_id
