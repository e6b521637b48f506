"""satcnn's LightningCLI: subclass mode for tasks and datamodules, MLflow by default."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from satcnn import __version__
from satcnn.tasks.base import SatcnnTask
from satcnn.tracking.checkpoints import AtomicCheckpointIO
from satcnn.tracking.mlflow import MLflowSaveConfigCallback, mlflow_logger

log = logging.getLogger(__name__)

TRAINER_DEFAULTS: dict[str, Any] = {
    "logger": {"class_path": "satcnn.tracking.mlflow.SatcnnMLFlowLogger"},
    "default_root_dir": "runs",
    "enable_autolog_hparams": False,  # the whole config is logged by MLflowSaveConfigCallback
}


class SatcnnCLI(LightningCLI):
    """``satcnn fit|validate|test|predict``: configs pick the task and datamodule by ``class_path``.

    Adds ``--test_after_fit`` (test the best checkpoint in the same run, then print a summary),
    validates the data before any run or file is created, and writes checkpoints atomically.
    """

    def __init__(self, args: list[str] | None = None, run: bool = True) -> None:
        super().__init__(
            model_class=SatcnnTask,
            datamodule_class=L.LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            save_config_callback=MLflowSaveConfigCallback,
            save_config_kwargs={"save_to_log_dir": False},
            trainer_defaults=TRAINER_DEFAULTS,
            seed_everything_default=42,
            parser_kwargs={"version": f"satcnn {__version__}"},
            auto_configure_optimizers=False,
            args=args,
            run=run,
        )

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--test_after_fit",
            type=bool,
            default=False,
            help="After fit, test the best checkpoint in the same MLflow run and print a summary.",
        )

    def instantiate_trainer(self, **kwargs: Any) -> L.Trainer:
        plugins = kwargs.get("plugins") or []
        plugins = plugins if isinstance(plugins, list) else [plugins]
        if not any(isinstance(p, AtomicCheckpointIO) for p in plugins):
            kwargs["plugins"] = [*plugins, AtomicCheckpointIO()]
        return super().instantiate_trainer(**kwargs)

    # Validate the input before the trainer creates an MLflow run or any file.
    def _validate_data(self, stage: str) -> None:
        if self.datamodule is None:
            return
        self.datamodule.setup(stage)
        check = getattr(self.model, "check_data", None)
        if callable(check):
            check(self.datamodule)

    def before_fit(self) -> None:
        self._validate_data("fit")

    def before_validate(self) -> None:
        self._validate_data("validate")

    def before_test(self) -> None:
        self._validate_data("test")

    def before_predict(self) -> None:
        self._validate_data("predict")

    def after_fit(self) -> None:
        trainer = self.trainer
        results: list[Mapping[str, float]] = []
        if self.config["fit"].get("test_after_fit"):
            best = getattr(trainer.checkpoint_callback, "best_model_path", "")
            ckpt = "best" if best else None
            results = list(trainer.test(self.model, datamodule=self.datamodule, ckpt_path=ckpt))
        if trainer.is_global_zero:
            _summary(trainer, self.model, results)


def _summary(trainer: L.Trainer, model: L.LightningModule, results: list[Mapping[str, float]]) -> None:
    """Print the headline test metric, the run id, the best checkpoint and how to open the UI."""
    lines = []
    metric, label = getattr(model, "headline", ("test_loss", "test loss"))
    if results and metric in results[0]:
        lines.append(f"{label}: {results[0][metric]:.4f}")
    logger = mlflow_logger(trainer)
    if logger is not None and logger.run_id:
        lines.append(f"mlflow run id: {logger.run_id}")
    ckpt = getattr(trainer.checkpoint_callback, "best_model_path", "")
    if ckpt:
        lines.append(f"checkpoint: {Path(ckpt).resolve()}")
    if logger is not None:
        lines.append(f"tracking store: {logger._tracking_uri}")
        lines.append("open the MLflow UI: python -m satcnn ui  (then browse http://127.0.0.1:5000)")
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
