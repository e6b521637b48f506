"""The fit's MLflow logger: satcnn's defaults, safe against concurrent runs, resumable, KILLED on a signal.

Every ``fit`` is one MLflow run. Without ``MLFLOW_TRACKING_URI`` the store is ``mlflow.db``
(SQLite) in the working directory and artifacts go to ``mlruns/``; no server is needed.
"""

from __future__ import annotations

import logging
import os
from typing import Any, cast

import lightning as L
from lightning.pytorch.loggers import MLFlowLogger
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only

from satcnn.tracking.client import (
    LOCK_RETRIES,
    RetryingClient,
    get_or_create_experiment,
    mark_training_experiment,
    retry_locked,
    sqlite_busy_timeout,
    store_init_lock,
)
from satcnn.tracking.store import default_tracking_uri

log = logging.getLogger(__name__)

PID_TAG = "satcnn.pid"
HOST_TAG = "satcnn.host"


def global_rank() -> int:
    """This process's global rank as Lightning knows it (set from the launcher's environment)."""
    return int(getattr(rank_zero_only, "rank", 0))


def process_tags() -> dict[str, str]:
    """Tags naming the process that runs a fit, so a run it left RUNNING can be found later."""
    import socket

    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


class SatcnnMLFlowLogger(MLFlowLogger):
    """Lightning's MLFlowLogger with satcnn's defaults (local SQLite store, no server).

    Args:
        experiment_name: MLflow experiment.
        run_name: name of the run (MLflow picks one when empty).
        tracking_uri: store; default ``$MLFLOW_TRACKING_URI`` or ``sqlite:///<cwd>/mlflow.db``.
        tags: run tags.
        artifact_location: artifact root of a new experiment (default ``<cwd>/mlruns/<id>``).
        run_id: continue this run instead of starting one (resuming).

    Attributes:
        tracking_uri: the store this logger writes to (resolved from the argument or the default).
    """

    def __init__(
        self,
        experiment_name: str = "satcnn",
        run_name: str | None = None,
        tracking_uri: str | None = None,
        tags: dict[str, Any] | None = None,
        artifact_location: str | None = None,
        run_id: str | None = None,
    ) -> None:
        self.tracking_uri: str = tracking_uri or default_tracking_uri()
        tags = {**(tags or {}), **process_tags()}
        # MLflow creates a new SQLite store's schema on first use, which is not safe against
        # several processes starting at once: serialise that step with a lock file.
        # The store's setup (engine, schema check) connects outside MLflow's sessions, with sqlite3's
        # default 5 s lock timeout: wait as long as the sessions do, and retry a lock held longer.
        sqlite_busy_timeout()
        with store_init_lock(self.tracking_uri):
            retry_locked(
                super().__init__,
                LOCK_RETRIES,
                experiment_name=experiment_name,
                run_name=run_name,
                tracking_uri=self.tracking_uri,
                tags=tags,
                log_model=False,  # the best and last checkpoints are logged by MLflowArtifactsCallback
                artifact_location=artifact_location,
                run_id=run_id,
            )
        self._mlflow_client = cast(Any, RetryingClient(self._mlflow_client))
        self._killed = False

    def mark_killed(self) -> None:
        """End the run as KILLED (not FAILED) when it is finalized: a signal stopped the fit."""
        self._killed = True

    @rank_zero_only
    def finalize(self, status: str = "success") -> None:
        """End the run: FINISHED, FAILED, or KILLED after :meth:`mark_killed`."""
        super().finalize("KILLED" if self._killed and status == "failed" else status)

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        """The MLflow client (rank 0), after creating the experiment safely against concurrent runs."""
        if not self._initialized and self._experiment_id is None and self._run_id is None:
            self._experiment_id = get_or_create_experiment(
                self._mlflow_client, self._experiment_name, self._artifact_location
            )
        return MLFlowLogger.experiment.fget(self)  # type: ignore[attr-defined]

    def resume(self, run_id: str) -> None:
        """Continue the MLflow run ``run_id`` (from a checkpoint) instead of starting a new one.

        Must be called before the trainer first touches the logger; marks the run RUNNING again.
        """
        if self._initialized and self._run_id != run_id:
            raise RuntimeError(f"the logger already started run {self._run_id}; cannot resume {run_id}")
        self._run_id = run_id
        self._initialized = False
        if global_rank() == 0:
            client = self.experiment
            if client.get_run(run_id).info.status == "RUNNING":
                # Only a process that died without ending its run (SIGKILL, out of memory) leaves it so.
                client.set_terminated(run_id, "KILLED")
                log.warning(
                    "MLflow run %s was left RUNNING by a process killed hard; marked it KILLED", run_id
                )
            client.update_run(run_id, status="RUNNING")
            experiment_id = client.get_run(run_id).info.experiment_id
            mark_training_experiment(client, client.get_experiment(experiment_id))
            for key, value in process_tags().items():
                client.set_tag(run_id, key, value)
            log.info("continuing MLflow run %s", run_id)


def mlflow_logger(trainer: L.Trainer) -> MLFlowLogger | None:
    """The trainer's MLflow logger, if it has one."""
    return next((lg for lg in trainer.loggers if isinstance(lg, MLFlowLogger)), None)


def logger_tracking_uri(logger: MLFlowLogger) -> str:
    """The store ``logger`` writes to, through public API only (rank 0: it may start the run).

    satcnn's logger keeps it as :attr:`SatcnnMLFlowLogger.tracking_uri`; for Lightning's own
    logger it is its MLflow client's ``tracking_uri``.
    """
    if isinstance(logger, SatcnnMLFlowLogger):
        return logger.tracking_uri
    return str(logger.experiment.tracking_uri)
