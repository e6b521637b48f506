"""satcnn's LightningCLI: subclass mode for tasks and datamodules, MLflow by default."""

from __future__ import annotations

import logging
import os
import re
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
from jsonargparse import Namespace
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities.exceptions import SIGTERMException

from satcnn import __version__
from satcnn.errors import (
    RESUME_HINT_ENV,
    ConfigError,
    InputFileNotFoundError,
    Interrupted,
    SatcnnError,
)
from satcnn.flags import satcnn_command
from satcnn.lightning_parser import SatcnnArgumentParser
from satcnn.models.checkpoint import read_checkpoint
from satcnn.tasks.base import SatcnnTask
from satcnn.tracking.callbacks import (
    LoggedLearningRateMonitor,
    MLflowArtifactsCallback,
    MLflowSaveConfigCallback,
)
from satcnn.tracking.checkpoints import AtomicCheckpointIO, LastStateCheckpoint, checkpoint_run_id
from satcnn.tracking.datasets import MLflowDatasetsCallback
from satcnn.tracking.interrupt import InterruptHandler
from satcnn.tracking.logger import SatcnnMLFlowLogger, logger_tracking_uri, mlflow_logger
from satcnn.tracking.system_metrics import SystemMetricsCallback

log = logging.getLogger(__name__)

TRAINER_DEFAULTS: dict[str, Any] = {
    "logger": {"class_path": "satcnn.tracking.logger.SatcnnMLFlowLogger"},
    "default_root_dir": "runs",
    "enable_autolog_hparams": False,  # the whole config is logged by MLflowSaveConfigCallback
}


@dataclass(frozen=True)
class DefaultCallback:
    """A callback every run gets, as the default of its own config key.

    Attributes:
        role: its kind; a callback of this type in ``trainer.callbacks`` replaces the default, and
            a ``class_path`` given for the key must name a subclass.
        cls: the default class.
        init_args: the default's arguments (the class's own defaults fill in the rest).
    """

    role: type[L.Callback]
    cls: type[L.Callback]
    init_args: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> dict[str, Any]:
        """The default as config: ``class_path`` and ``init_args``."""
        return {"class_path": f"{self.cls.__module__}.{self.cls.__qualname__}", "init_args": self.init_args}


# The callbacks every run gets, one config key each (``fit --print_config`` shows them);
# ``KEY: null`` removes one.
DEFAULT_CALLBACKS: dict[str, DefaultCallback] = {
    # checkpoints, the MLflow model and figures to the run
    "artifacts": DefaultCallback(MLflowArtifactsCallback, MLflowArtifactsCallback),
    # SIGTERM and SIGINT stop at a step boundary, the run ends KILLED
    "interrupt": DefaultCallback(InterruptHandler, InterruptHandler),
    # best-<epoch>-<step>.ckpt on the task's monitor, and a last.ckpt always at the newest state
    "checkpoint": DefaultCallback(
        ModelCheckpoint,
        LastStateCheckpoint,
        {"filename": "best-{epoch:03d}-{step}", "auto_insert_metric_name": False},
    ),
    # learning rates per epoch (nothing without a logger)
    "lr_monitor": DefaultCallback(
        LearningRateMonitor, LoggedLearningRateMonitor, {"logging_interval": "epoch"}
    ),
    # the data as dataset inputs of the run (nothing without an MLflow logger)
    "dataset_inputs": DefaultCallback(MLflowDatasetsCallback, MLflowDatasetsCallback),
    # CPU, memory and GPU metrics in the run (nothing without an MLflow logger)
    "system_monitor": DefaultCallback(SystemMetricsCallback, SystemMetricsCallback, {"interval": 10.0}),
}


class SatcnnCLI(LightningCLI):
    """``satcnn fit|validate|test|predict``: configs pick the task and datamodule by ``class_path``.

    Adds ``--test_after_fit`` (test the best checkpoint in the same run, then print a summary) and
    ``--register NAME`` (register the run's MLflow model in the model registry), validates the data
    before any run or file is created, and writes checkpoints atomically. ``fit --ckpt_path`` takes
    a checkpoint file, ``last`` (the newest ``last.ckpt`` under ``trainer.default_root_dir``) or an
    MLflow run id, and continues that checkpoint's MLflow run. The callbacks every run gets are
    config defaults (:data:`DEFAULT_CALLBACKS`, one key each), so a task needs no tracking.
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
            parser_class=SatcnnArgumentParser,
            auto_configure_optimizers=False,
            args=args,
            run=run,
        )

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        """Parse, then check that a ``--ckpt_path`` file is a readable satcnn checkpoint.

        Lightning reads hyperparameters from ``--ckpt_path`` right after parsing, before any hook:
        checking here makes a bad file one clear error, not a traceback.
        """
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if ckpt_path and Path(ckpt_path).is_file():
            read_checkpoint(ckpt_path, "cpu")

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--test_after_fit",
            type=bool,
            default=False,
            help="After fit, test the best checkpoint in the same MLflow run and print a summary.",
        )
        parser.add_argument(
            "--register",
            type=str | None,
            default=None,
            help="After fit, register the best model in the MLflow model registry under this name.",
        )
        parser.add_argument(
            "--register_alias",
            type=str | None,
            default="current",
            help="Alias set on the registered version (models:/NAME@ALIAS); null for none.",
        )
        for key, default in DEFAULT_CALLBACKS.items():
            parser.add_subclass_arguments(default.role, key, required=False, fail_untyped=False)
            parser.set_defaults({key: default.config})
        parser.add_argument(
            "--last_every_n_steps",
            type=int | None,
            default=None,
            help="Also refresh last.ckpt every N optimizer steps (0: at every epoch end only); "
            "sets checkpoint.init_args.last_every_n_steps.",
        )
        parser.add_argument(
            "--system_metrics",
            type=bool,
            default=True,
            help="Log system metrics (CPU, memory, GPU when nvidia-ml-py is installed) to the MLflow run; "
            "false sets system_monitor to null.",
        )
        parser.add_argument(
            "--system_metrics_interval",
            type=float | None,
            default=None,
            help="Seconds between system metric samples; sets system_monitor.init_args.interval.",
        )

    def before_instantiate_classes(self) -> None:
        """Apply the shorthand flags to the default callbacks' config (:func:`apply_callback_flags`)."""
        apply_callback_flags(self.config[self.subcommand] if self.subcommand else self.config)

    def instantiate_classes(self) -> None:
        """Build the task, datamodule and trainer; satcnn's own error is raised as itself.

        jsonargparse wraps an error raised while building a class (a missing ``pretrained``
        weights file) in its own ``ValueError`` listing every subtype it tried; the CLI prints
        satcnn's error as one line instead.
        """
        try:
            super().instantiate_classes()
        except Exception as err:
            cause: BaseException | None = err
            while cause is not None and not isinstance(cause, SatcnnError):
                cause = cause.__cause__ or cause.__context__
            if cause is None:
                raise
            raise cause from None

    def instantiate_trainer(self, **kwargs: Any) -> L.Trainer:
        """The trainer, with atomic checkpoints and the default callbacks (:func:`default_callbacks`)."""
        init = self.config_init[self.subcommand] if self.subcommand else self.config_init
        config = {**init.get("trainer", {}), **kwargs}
        plugins = config.get("plugins") or []
        plugins = plugins if isinstance(plugins, list) else [plugins]
        if not any(isinstance(p, AtomicCheckpointIO) for p in plugins):
            kwargs["plugins"] = [*plugins, AtomicCheckpointIO()]
        callbacks = config.get("callbacks") or []
        callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
        kwargs["callbacks"] = [*callbacks, *default_callbacks(init, config)]
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
        self._resume()

    def _resume(self) -> None:
        """Resolve ``--ckpt_path`` (file, ``last`` or run id) and continue the checkpoint's MLflow run."""
        config = self.config_init["fit"]
        ckpt_path = config.get("ckpt_path")
        if not ckpt_path:
            return
        path = resolve_resume_checkpoint(str(ckpt_path), self.trainer.default_root_dir)
        if path is None:
            log.warning("ckpt_path=%s: no checkpoint found, starting from scratch", ckpt_path)
            config["ckpt_path"] = None
            return
        config["ckpt_path"] = str(path)
        logger = mlflow_logger(self.trainer)
        run_id = checkpoint_run_id(path)
        if isinstance(logger, SatcnnMLFlowLogger) and run_id:
            logger.resume(run_id)

    def fit(self, model: L.LightningModule, **kwargs: Any) -> None:
        """``trainer.fit``; a SIGTERM or SIGINT ends it with :class:`Interrupted` (exit 143 or 130)."""
        try:
            self.trainer.fit(model, **kwargs)
        except (SIGTERMException, SystemExit, KeyboardInterrupt):
            handler = next(
                (c for c in getattr(self.trainer, "callbacks", []) if isinstance(c, InterruptHandler)), None
            )
            if handler is None or handler.signal is None:
                raise
            raise Interrupted(
                _interrupted_message(self.trainer, handler.signal), 128 + handler.signal
            ) from None

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
        name = self.config["fit"].get("register")
        version = None
        if name and trainer.is_global_zero:
            version = self._register(name, self.config["fit"].get("register_alias"))
        if trainer.is_global_zero:
            _summary(trainer, self.model, results, version)

    def _register(self, name: str, alias: str | None) -> str:
        from satcnn.tracking.registry import register_model

        logger = mlflow_logger(self.trainer)
        artifacts = next(
            (c for c in getattr(self.trainer, "callbacks", []) if isinstance(c, MLflowArtifactsCallback)),
            None,
        )
        if logger is None or logger.run_id is None or artifacts is None or artifacts.model_uri is None:
            raise ConfigError(
                f"--register {name}: this fit logged no MLflow model (no MLflow logger or checkpoint)"
            )
        version = register_model(logger.experiment, logger.run_id, name, alias=alias)
        return f"models:/{name}/{version.version}" + (f" (models:/{name}@{alias})" if alias else "")


def apply_callback_flags(config: Namespace) -> None:
    """Apply ``--last_every_n_steps``, ``--system_metrics false`` and ``--system_metrics_interval``.

    They are shorthands for ``checkpoint.init_args.last_every_n_steps``, ``system_monitor: null``
    and ``system_monitor.init_args.interval``; unset, they leave the config as it is. Applied
    before the classes are built, so the config logged to the run shows the result.
    """
    every = config.get("last_every_n_steps")
    if every is not None and config.get("checkpoint") is not None:
        config["checkpoint.init_args.last_every_n_steps"] = every
    if config.get("system_metrics") is False:
        config["system_monitor"] = None
    interval = config.get("system_metrics_interval")
    if interval is not None and config.get("system_monitor") is not None:
        config["system_monitor.init_args.interval"] = interval


def default_callbacks(init: Mapping[str, Any], trainer_config: Mapping[str, Any]) -> list[L.Callback]:
    """The built callbacks of the :data:`DEFAULT_CALLBACKS` keys that a run gets.

    A key set to null is left out, and so is a default whose role a callback in
    ``trainer.callbacks`` already has (a configured ``ModelCheckpoint`` wins over ``checkpoint``).
    One rule stays implicit: with ``trainer.enable_checkpointing: false`` the ``checkpoint``
    default is left out, since Lightning refuses a checkpoint callback then.
    """
    configured = trainer_config.get("callbacks") or []
    configured = configured if isinstance(configured, list) else [configured]
    checkpointing = trainer_config.get("enable_checkpointing", True) is not False
    callbacks: list[L.Callback] = []
    for key, default in DEFAULT_CALLBACKS.items():
        callback = init.get(key)
        if callback is None or any(isinstance(c, default.role) for c in configured):
            continue
        if isinstance(callback, ModelCheckpoint) and not checkpointing:
            continue
        callbacks.append(callback)
    return callbacks


def resolve_resume_checkpoint(ckpt_path: str, root_dir: str | Path) -> Path | None:
    """The checkpoint file ``fit --ckpt_path`` means: a path, ``last``, or an MLflow run id.

    ``last`` is the newest ``last*.ckpt`` under ``root_dir`` (checkpoints live in
    ``<root_dir>/<experiment id>/<run id>/checkpoints/``); a run id is that run's ``last.ckpt``.
    Returns None for ``last`` when there is none yet.
    """
    root = Path(root_dir)
    if ckpt_path == "last":
        found = list(root.glob("*/*/checkpoints/last*.ckpt"))
        return max(found, key=lambda p: p.stat().st_mtime) if found else None
    path = Path(ckpt_path)
    if path.is_file():
        return path
    if re.fullmatch(r"[0-9a-f]{32}", ckpt_path):
        found = list(root.glob(f"*/{ckpt_path}/checkpoints/last*.ckpt"))
        if found:
            return max(found, key=lambda p: p.stat().st_mtime)
        raise ConfigError(
            f"--ckpt_path {ckpt_path}: no checkpoints/last.ckpt of that MLflow run under {root.resolve()}; "
            "give the checkpoint file instead"
        )
    raise InputFileNotFoundError(
        f"--ckpt_path {ckpt_path}: no such file (expected a .ckpt file, 'last' or an MLflow run id)"
    )


def _interrupted_message(trainer: L.Trainer, signum: int) -> str:
    """One line: which signal, the step reached, the checkpoint kept, the run and how to resume."""
    parts = [f"interrupted by {signal.Signals(signum).name} at step {trainer.global_step}"]
    last = getattr(trainer.checkpoint_callback, "last_model_path", "")
    if last and Path(last).is_file():
        parts.append(f"saved {Path(last).resolve()}")
    logger = mlflow_logger(trainer)
    if logger is not None and logger.run_id:
        parts.append(f"MLflow run {logger.run_id} marked KILLED")
    parts.append(os.environ.get(RESUME_HINT_ENV) or "resume with --ckpt_path last")
    return "; ".join(parts)


def _summary(
    trainer: L.Trainer,
    model: L.LightningModule,
    results: list[Mapping[str, float]],
    registered: str | None = None,
) -> None:
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
    if registered:
        lines.append(f"registered model: {registered}")
    if logger is not None:
        lines.append(f"tracking store: {logger_tracking_uri(logger)}")
        from satcnn.tracking.ui import UiOptions

        page = UiOptions().training_view(logger.experiment_id if logger.run_id else None)
        lines.append(f"open the MLflow UI: {satcnn_command('ui')}  (then browse {page})")
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
