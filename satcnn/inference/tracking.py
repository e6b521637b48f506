"""The MLflow run of a batch inference (experiment ``satcnn-inference``).

Uses the training logger's safeguards from ``satcnn.tracking.client``: the store-creation lock, a
client retrying while SQLite is locked, and a race-safe get-or-create of the experiment.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from satcnn.inference.model_io import LoadedModel
from satcnn.inference.report import InferenceReport

logger = logging.getLogger(__name__)

__all__ = ["EXPERIMENT", "track_run"]

EXPERIMENT = "satcnn-inference"


def _log(
    client: Any, run_id: str, report: InferenceReport, params: dict[str, Any], stages: dict[str, float]
) -> None:
    from mlflow.entities import Metric, Param

    from satcnn.tracking.params import param_value

    now = int(time.time() * 1000)
    metrics = {
        "tiles": len(report.done),
        "tiles_skipped": len(report.skipped),
        "tiles_failed": len(report.failures),
        "megapixels": report.megapixels,
        "seconds": report.seconds,
        "megapixels_per_s": report.megapixels_per_s,
        **stages,
    }
    client.log_batch(
        run_id,
        metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
        params=[Param(k, param_value(v)) for k, v in params.items()],
    )
    if report.manifest is not None:
        client.log_artifact(run_id, str(report.manifest))
    for record in (report.class_fractions_csv, report.predictions_csv, report.metrics_json):
        if record is not None and record.exists():
            client.log_artifact(run_id, str(record))


def track_run(
    report: InferenceReport,
    lm: LoadedModel,
    params: dict[str, Any],
    start_ms: int,
    tracking_uri: str | None,
    stages: dict[str, float] | None = None,
) -> str | None:
    """Log the run to MLflow and return its id; a tracking failure is logged, not raised.

    ``stages`` are further metrics of the engine (per-stage seconds and throughput).

    The outputs are done by then, so a failing store must not lose them. A run whose logging
    fails after it was created is marked FAILED.
    """
    from mlflow import MlflowClient

    from satcnn.tracking.client import RetryingClient, get_or_create_experiment, store_init_lock
    from satcnn.tracking.store import default_tracking_uri

    store = tracking_uri or default_tracking_uri()
    client: Any = None
    run_id: str | None = None
    try:
        with store_init_lock(store):
            client = RetryingClient(MlflowClient(tracking_uri=store))
            exp_id = get_or_create_experiment(client, EXPERIMENT, None)
        tags = {"satcnn.model_uri": report.model_uri, "satcnn.task": lm.task}
        if lm.source_run_id:
            tags["satcnn.source_run_id"] = lm.source_run_id
        if report.shard[1] > 1:
            tags["satcnn.shard"] = f"{report.shard[0]}/{report.shard[1]}"
        run = client.create_run(exp_id, start_time=start_ms, tags=tags, run_name="infer")
        run_id = str(run.info.run_id)
        _log(client, run_id, report, params, stages or {})
        client.set_terminated(run_id, "FINISHED" if report.ok else "FAILED")
        logger.info("inference tracked as MLflow run %s in %s", run_id, store)
        return run_id
    except Exception as err:  # tracking must not lose finished outputs
        logger.warning("could not log the inference to MLflow at %s: %s", store, err)
        if client is not None and run_id is not None:
            try:
                client.set_terminated(run_id, "FAILED")
            except Exception:
                logger.warning("could not mark MLflow run %s as FAILED", run_id, exc_info=True)
        return None
