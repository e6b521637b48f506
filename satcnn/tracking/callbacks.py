"""The fit's MLflow callbacks: the resolved config, checkpoints, the logged model and figures.

Everything here logs from rank 0 only. :class:`satcnn.lightning_cli.SatcnnCLI` adds them as
config defaults (``satcnn fit --print_config`` shows them).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.utilities import rank_zero_only

from satcnn.models.checkpoint import RUN_KEY
from satcnn.tracking.curves import log_curves
from satcnn.tracking.logger import global_rank, logger_tracking_uri, mlflow_logger
from satcnn.tracking.params import flatten, log_params

BEST_CHECKPOINT_ARTIFACT = "checkpoints/best.ckpt"
LAST_CHECKPOINT_ARTIFACT = "checkpoints/last.ckpt"


class MLflowSaveConfigCallback(SaveConfigCallback):
    """Log the fully resolved CLI config to MLflow: as ``config.yaml`` and as flat params (rank 0 only)."""

    def save_config(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        logger = mlflow_logger(trainer)
        # In DDP the other ranks have no run (run_id is None there): only rank 0 logs.
        if logger is None or not trainer.is_global_zero or global_rank() != 0:
            return
        run_id = logger.run_id
        if run_id is None:
            return
        text = self.parser.dump(self.config, skip_none=False)
        logger.experiment.log_text(run_id, text, "config.yaml")
        config = self.config.as_dict()
        config.pop("config", None)
        log_params(logger.experiment, run_id, flatten(config))


class MLflowArtifactsCallback(L.Callback):
    """Tie checkpoints to their run; at the end of fit log checkpoints, the MLflow model and figures.

    Every checkpoint records its run (``checkpoint[RUN_KEY]``) so that resuming from it
    continues the same run. At the end of fit, rank 0 logs ``checkpoints/best.ckpt`` and
    ``checkpoints/last.ckpt``, the best checkpoint as the MLflow 3 logged model ``model`` (see
    :mod:`satcnn.tracking.registry`), learning-rate and loss curves and the task's figures.
    Without an MLflow logger it does nothing.

    Args:
        log_model: log the best checkpoint as an MLflow model at the end of fit.
    """

    def __init__(self, log_model: bool = True) -> None:
        self.log_model = log_model
        self.model_uri: str | None = None  # models:/<model_id> of the logged model
        self.model_id: str | None = None

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        logger = mlflow_logger(trainer)
        if logger is None or global_rank() != 0:
            return
        run_id = logger.run_id
        if run_id is not None:
            checkpoint[RUN_KEY] = {
                "run_id": run_id,
                "experiment_id": logger.experiment_id,
                "tracking_uri": logger_tracking_uri(logger),
            }

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
            best = ckpt.best_model_path or ckpt.last_model_path
            if ckpt.best_model_path:
                client.set_tag(run_id, "satcnn.best_checkpoint", str(Path(ckpt.best_model_path).resolve()))
            if self.log_model and best and Path(best).exists():
                from satcnn.tracking.registry import log_checkpoint_model

                uri = logger_tracking_uri(logger)
                info = log_checkpoint_model(client, run_id, best, tracking_uri=uri)
                self.model_uri, self.model_id = info.model_uri, info.model_id
        log_curves(client, run_id)
        self._log_figures(trainer, pl_module, "val")

    @rank_zero_only
    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        logger = mlflow_logger(trainer)
        if self.model_id and logger is not None and logger.run_id is not None:
            # ``--test_after_fit`` tests the best checkpoint, which is the logged model
            from satcnn.tracking.registry import link_metrics

            link_metrics(logger.experiment, logger.run_id, self.model_id, prefix="test_")
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


class LoggedLearningRateMonitor(LearningRateMonitor):
    """Lightning's ``LearningRateMonitor`` that does nothing when the trainer has no logger.

    Lightning's refuses to start without one; this lets it be a config default that
    ``--trainer.logger false`` needs no second switch for.
    """

    def on_train_start(self, trainer: L.Trainer, *args: Any, **kwargs: Any) -> None:
        if trainer.loggers:
            super().on_train_start(trainer, *args, **kwargs)

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any, **kwargs: Any) -> None:
        if trainer.loggers:
            super().on_train_batch_start(trainer, *args, **kwargs)

    def on_train_epoch_start(self, trainer: L.Trainer, *args: Any, **kwargs: Any) -> None:
        if trainer.loggers:
            super().on_train_epoch_start(trainer, *args, **kwargs)


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
