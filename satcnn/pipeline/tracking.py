"""The pipeline's MLflow runs: one parent run, one nested run per stage, found again by key.

Tags:

* parent: ``satcnn.pipeline`` (name), ``satcnn.pipeline.out`` (output folder), and
  ``satcnn.stage.<stage>`` (the run id each stage used, reused ones included);
* stage: ``mlflow.parentRunId`` (nesting in the UI), ``satcnn.stage``, ``satcnn.stage_key``, and
  ``satcnn.stage_complete`` = ``true``, set last, once the stage's outputs are recorded.

A stage's outputs (MLflow URIs, artifact and file paths) are the JSON artifact ``stage.json`` of
its run, so a later stage or a rerun reads them from the store, never from a process's output.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from satcnn.tracking.client import RetryingClient, get_or_create_experiment, store_init_lock
from satcnn.tracking.params import param_value
from satcnn.tracking.store import default_tracking_uri

log = logging.getLogger(__name__)

__all__ = ["OUTPUTS_ARTIFACT", "PipelineTracker"]

OUTPUTS_ARTIFACT = "stage.json"
PIPELINE_TAG = "satcnn.pipeline"
OUT_TAG = "satcnn.pipeline.out"
STAGE_TAG = "satcnn.stage"
KEY_TAG = "satcnn.stage_key"
COMPLETE_TAG = "satcnn.stage_complete"


def artifact_location(tracking_uri: str, experiment: str) -> str | None:
    """``<store folder>/mlruns/<experiment>`` for a local SQLite store, so artifacts sit beside it
    whatever the working directory; None (MLflow's default) for other stores."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    return str(Path(tracking_uri.removeprefix("sqlite:///")).resolve().parent / "mlruns" / experiment)


class PipelineTracker:
    """The MLflow side of one pipeline run.

    Args:
        experiment: Experiment of the parent and stage runs (created if missing).
        tracking_uri: The store (default ``default_tracking_uri()``).
    """

    def __init__(self, experiment: str, tracking_uri: str | None = None) -> None:
        self.tracking_uri = tracking_uri or default_tracking_uri()
        with store_init_lock(self.tracking_uri):
            registry = os.environ.get("MLFLOW_REGISTRY_URI") or self.tracking_uri
            self.client: Any = RetryingClient(MlflowClient(self.tracking_uri, registry_uri=registry))
            self.experiment_id = get_or_create_experiment(
                self.client, experiment, artifact_location(self.tracking_uri, experiment)
            )
        self.parent_id: str | None = None

    def _search(self, query: str) -> list[Any]:
        return list(
            self.client.search_runs(
                [self.experiment_id], filter_string=query, order_by=["attributes.start_time DESC"]
            )
        )

    def start_parent(self, name: str, out: Path, params: dict[str, str]) -> str:
        """Resume the newest unfinished parent run of this pipeline and folder, or start one."""
        query = f"tags.`{PIPELINE_TAG}` = '{name}' and tags.`{OUT_TAG}` = '{out}'"
        unfinished = [r for r in self._search(query) if r.info.status != "FINISHED"]
        if unfinished:
            self.parent_id = str(unfinished[0].info.run_id)
            self.client.update_run(self.parent_id, status="RUNNING")
            log.info("pipeline %s: resuming parent run %s", name, self.parent_id)
        else:
            run = self.client.create_run(
                self.experiment_id, tags={PIPELINE_TAG: name, OUT_TAG: str(out)}, run_name=f"pipeline-{name}"
            )
            self.parent_id = str(run.info.run_id)
            from mlflow.entities import Param

            fresh = [Param(k, param_value(v)) for k, v in params.items()]
            for start in range(0, len(fresh), 100):
                self.client.log_batch(self.parent_id, params=fresh[start : start + 100])
        return self.parent_id

    def end_parent(self, status: str) -> None:
        """End the parent run (``FINISHED``, ``FAILED`` or ``KILLED``)."""
        if self.parent_id is not None:
            self.client.set_terminated(self.parent_id, status)

    def stage_tags(self, stage: str, key: str) -> dict[str, str]:
        """The tags of a new stage run (nested under the parent)."""
        assert self.parent_id is not None
        return {MLFLOW_PARENT_RUN_ID: self.parent_id, STAGE_TAG: stage, KEY_TAG: key}

    def finished_stage(self, stage: str, key: str) -> tuple[str, dict[str, Any]] | None:
        """A complete, FINISHED run of ``stage`` with ``key`` and its outputs, if there is one."""
        query = (
            f"tags.`{STAGE_TAG}` = '{stage}' and tags.`{KEY_TAG}` = '{key}' "
            f"and tags.`{COMPLETE_TAG}` = 'true' and attributes.status = 'FINISHED'"
        )
        for run in self._search(query):
            run_id = str(run.info.run_id)
            try:
                return run_id, self.read_outputs(run_id)
            except Exception as err:  # artifacts removed: not reusable
                log.warning("stage %s: run %s has no readable %s (%s)", stage, run_id, OUTPUTS_ARTIFACT, err)
        return None

    def abandon_unfinished(self, stage: str, key: str) -> None:
        """Mark runs of ``stage`` with ``key`` that a killed pipeline left RUNNING as KILLED."""
        query = (
            f"tags.`{STAGE_TAG}` = '{stage}' and tags.`{KEY_TAG}` = '{key}' and attributes.status = 'RUNNING'"
        )
        for run in self._search(query):
            self.client.set_terminated(run.info.run_id, "KILLED")
            log.warning(
                "stage %s: run %s was left RUNNING by a killed pipeline; marked KILLED",
                stage,
                run.info.run_id,
            )

    def create_stage_run(self, stage: str, key: str) -> str:
        """A new RUNNING stage run nested under the parent."""
        run = self.client.create_run(self.experiment_id, tags=self.stage_tags(stage, key), run_name=stage)
        return str(run.info.run_id)

    def complete_stage(self, run_id: str, stage: str, outputs: dict[str, Any], terminate: bool) -> None:
        """Record ``outputs`` as ``stage.json``, mark the run complete, and end it FINISHED."""
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / OUTPUTS_ARTIFACT
            path.write_text(json.dumps(outputs, indent=2, default=str))
            self.client.log_artifact(run_id, str(path))
        if terminate:
            self.client.set_terminated(run_id, "FINISHED")
        self.client.set_tag(run_id, COMPLETE_TAG, "true")
        assert self.parent_id is not None
        self.client.set_tag(self.parent_id, f"{STAGE_TAG}.{stage}", run_id)

    def fail_stage(self, run_id: str) -> None:
        """End a stage run FAILED (its key is then not reused)."""
        self.client.set_terminated(run_id, "FAILED")

    def read_outputs(self, run_id: str) -> dict[str, Any]:
        """The ``stage.json`` of a stage run."""
        with tempfile.TemporaryDirectory() as tmp:
            local = self.client.download_artifacts(run_id, OUTPUTS_ARTIFACT, tmp)
            data = json.loads(Path(local).read_text())
        if not isinstance(data, dict):
            raise ValueError(f"{OUTPUTS_ARTIFACT} of run {run_id} is not a JSON object")
        return data

    def log_folder(self, run_id: str, folder: Path, artifact_path: str) -> None:
        """Log a folder's files under ``artifact_path`` of a run."""
        self.client.log_artifacts(run_id, str(folder), artifact_path)
