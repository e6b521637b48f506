"""MLflow tracking defaults: the local SQLite store, config logging, checkpoints and figures.

Every ``fit`` is one MLflow run. Without ``MLFLOW_TRACKING_URI`` the store is
``mlflow.db`` (SQLite) in the working directory and artifacts go to ``mlruns/``; no server
is needed. Everything here logs from rank 0 only.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.loggers import MLFlowLogger
from lightning.pytorch.utilities import rank_zero_only

log = logging.getLogger(__name__)

DEFAULT_STORE = "mlflow.db"
BEST_CHECKPOINT_ARTIFACT = "checkpoints/best.ckpt"
LAST_CHECKPOINT_ARTIFACT = "checkpoints/last.ckpt"
PARAM_VALUE_LIMIT = 6000  # MLflow's limit on a parameter value


def default_tracking_uri() -> str:
    """``$MLFLOW_TRACKING_URI``, or the SQLite store ``mlflow.db`` in the working directory."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / DEFAULT_STORE}"


class SatcnnMLFlowLogger(MLFlowLogger):
    """Lightning's MLFlowLogger with satcnn's defaults (local SQLite store, no server).

    Args:
        experiment_name: MLflow experiment.
        run_name: name of the run (MLflow picks one when empty).
        tracking_uri: store; default ``$MLFLOW_TRACKING_URI`` or ``sqlite:///<cwd>/mlflow.db``.
        tags: run tags.
        artifact_location: artifact root of a new experiment (default ``<cwd>/mlruns/<id>``).
        run_id: continue this run instead of starting one (resuming).
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
        super().__init__(
            experiment_name=experiment_name,
            run_name=run_name,
            tracking_uri=tracking_uri or default_tracking_uri(),
            tags=tags,
            log_model=False,  # the best and last checkpoints are logged by MLflowArtifactsCallback
            artifact_location=artifact_location,
            run_id=run_id,
        )


def mlflow_logger(trainer: L.Trainer) -> MLFlowLogger | None:
    """The trainer's MLflow logger, if it has one."""
    return next((lg for lg in trainer.loggers if isinstance(lg, MLFlowLogger)), None)


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": "1"}``; lists and scalars become strings."""
    flat: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = str(value)[:PARAM_VALUE_LIMIT]
    return flat


def log_params(logger: MLFlowLogger, params: Mapping[str, str]) -> None:
    """Log params in batches of 100 (MLflow's limit), skipping keys the run already has."""
    from mlflow.entities import Param

    client = logger.experiment
    run_id = logger.run_id
    assert run_id is not None
    existing = client.get_run(run_id).data.params
    fresh = [Param(k, v) for k, v in params.items() if k not in existing]
    for start in range(0, len(fresh), 100):
        client.log_batch(run_id, params=fresh[start : start + 100])


class MLflowSaveConfigCallback(SaveConfigCallback):
    """Log the fully resolved CLI config to MLflow: as ``config.yaml`` and as flat params."""

    def save_config(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        logger = mlflow_logger(trainer)
        if logger is None or not trainer.is_global_zero:
            return
        text = self.parser.dump(self.config, skip_none=False)
        assert logger.run_id is not None
        logger.experiment.log_text(logger.run_id, text, "config.yaml")
        config = self.config.as_dict()
        config.pop("config", None)
        log_params(logger, flatten(config))


class MLflowArtifactsCallback(L.Callback):
    """At the end of fit and test, log the checkpoints and figures of the run to MLflow."""

    @rank_zero_only
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        logger = mlflow_logger(trainer)
        if logger is None or logger.run_id is None:
            return
        client, run_id = logger.experiment, logger.run_id
        ckpt = trainer.checkpoint_callback
        if isinstance(ckpt, ModelCheckpoint):
            for path, artifact in (
                (ckpt.best_model_path, BEST_CHECKPOINT_ARTIFACT),
                (ckpt.last_model_path, LAST_CHECKPOINT_ARTIFACT),
            ):
                if path and Path(path).exists():
                    _log_file_as(client, run_id, path, artifact)
            if ckpt.best_model_path:
                client.set_tag(run_id, "satcnn.best_checkpoint", str(Path(ckpt.best_model_path).resolve()))
        self._log_figures(trainer, pl_module, "val")

    @rank_zero_only
    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._log_figures(trainer, pl_module, "test")

    @staticmethod
    def _log_figures(trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        logger = mlflow_logger(trainer)
        if logger is None or logger.run_id is None:
            return
        from satcnn.tasks import figures

        for name, fig in figures.task_figures(pl_module, stage).items():
            logger.experiment.log_figure(logger.run_id, fig, f"figures/{name}.png")
            figures.close(fig)


def _log_file_as(client: Any, run_id: str, path: str, artifact: str) -> None:
    """Log ``path`` under the artifact path ``artifact`` (a file name of our choosing)."""
    folder, name = os.path.split(artifact)
    with tempfile.TemporaryDirectory() as tmp:
        link = Path(tmp) / name
        try:
            os.link(path, link)
        except OSError:
            import shutil

            shutil.copyfile(path, link)
        client.log_artifact(run_id, str(link), folder or None)
