"""An export's MLflow side: the metrics of the model's run, and the export logged back to that run.

Tracking never loses a finished export: a store that fails is logged as a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["EXPORT_ARTIFACT_DIR", "log_export", "run_metrics", "store_exists"]

EXPORT_ARTIFACT_DIR = "export"


def _store(tracking_uri: str | None) -> str:
    from satcnn.tracking.store import default_tracking_uri

    return tracking_uri or default_tracking_uri()


def store_exists(tracking_uri: str | None) -> bool:
    """False for a SQLite store whose file is missing (opening it would create an empty store)."""
    store = _store(tracking_uri)
    return not store.startswith("sqlite:///") or Path(store.removeprefix("sqlite:///")).is_file()


def _client(tracking_uri: str | None) -> Any:
    from mlflow import MlflowClient

    from satcnn.tracking.client import RetryingClient

    return RetryingClient(MlflowClient(tracking_uri=_store(tracking_uri)))


def run_metrics(run_id: str, tracking_uri: str | None) -> dict[str, float]:
    """The latest value of each metric of the MLflow run ``run_id`` (``{}`` if it cannot be read)."""
    if not store_exists(tracking_uri):
        return {}
    try:
        run = _client(tracking_uri).get_run(run_id)
    except Exception as err:  # a checkpoint path may name a run of another store
        logger.info("no metrics from MLflow run %s: %s", run_id, err)
        return {}
    return {str(k): float(v) for k, v in run.data.metrics.items()}


def log_export(run_id: str, files: Sequence[Path], tracking_uri: str | None, fmt: str) -> str | None:
    """Log ``files`` (the export and its card) to ``runs:/<run_id>/export/``; the run id, or None.

    The run is tagged ``satcnn.export.<fmt>`` with the export's artifact path.
    """
    if not store_exists(tracking_uri):
        logger.info("not logging the export: no MLflow store at %s", _store(tracking_uri))
        return None
    try:
        from satcnn.tracking.client import mark_training_experiment

        client = _client(tracking_uri)
        run = client.get_run(run_id)
        mark_training_experiment(client, client.get_experiment(run.info.experiment_id))
        for f in files:
            client.log_artifact(run_id, str(f), EXPORT_ARTIFACT_DIR)
        client.set_tag(run_id, f"satcnn.export.{fmt}", f"{EXPORT_ARTIFACT_DIR}/{Path(files[0]).name}")
    except Exception as err:  # the files are written; a failing store must not lose them
        logger.warning("could not log the export to MLflow run %s: %s", run_id, err)
        return None
    logger.info(
        "logged %s to MLflow run %s under %s/",
        ", ".join(Path(f).name for f in files),
        run_id,
        EXPORT_ARTIFACT_DIR,
    )
    return run_id
