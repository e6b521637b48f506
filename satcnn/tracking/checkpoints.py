"""Checkpoint writing: atomic files, a ``last.ckpt`` that always holds the newest state, the run of a file."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint

from satcnn.checks import require_at_least
from satcnn.io.atomic import atomic_output
from satcnn.models.checkpoint import read_checkpoint
from satcnn.tasks.base import SatcnnTask


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write each checkpoint to a temporary file in the same folder, then rename it into place.

    Lightning's own writer opens the final path and streams into it, so a crash or a full disk
    can leave a truncated checkpoint where the last good one was.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        with atomic_output(path) as tmp:
            torch.save(checkpoint, tmp)


class LastStateCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` whose ``last.ckpt`` is the newest state, not the newest best.

    Lightning rewrites ``last.ckpt`` only when a top-k checkpoint is saved at the same step, so
    with ``monitor`` set a long fit could leave it many epochs behind and a resume would rewind.
    Here ``last.ckpt`` is also written at every epoch end (after validation), every
    ``last_every_n_steps`` optimizer steps when that is above 0, and when an interruption
    (SIGTERM, SIGINT) stops the fit.

    Args:
        last_every_n_steps: also refresh ``last.ckpt`` every this many steps (0: epochs only).
        monitor: the metric whose best checkpoint is kept; None: the satcnn task's ``monitor``.
        mode: ``min`` or ``max``; None: the task's ``monitor_mode`` (``min`` for another module).
        **kwargs: ``ModelCheckpoint``'s arguments; ``save_last`` is always on.
    """

    def __init__(
        self,
        last_every_n_steps: int = 0,
        monitor: str | None = None,
        mode: Literal["min", "max"] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs["save_last"] = True
        top_k = int(kwargs.pop("save_top_k", 1))
        # Lightning accepts save_top_k above 1 only with a monitor: the task's comes in setup
        kwargs["save_top_k"] = top_k if monitor is not None or top_k <= 1 else 1
        super().__init__(monitor=monitor, mode=mode or "min", **kwargs)
        require_at_least("last_every_n_steps", last_every_n_steps, 0)
        self.last_every_n_steps = last_every_n_steps
        self.mode_given = mode is not None
        self.top_k_given = top_k

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Take the task's ``monitor`` (and ``monitor_mode``) when none was given, before any restore."""
        if self.monitor is None and isinstance(pl_module, SatcnnTask):
            self.monitor = pl_module.monitor
            self.save_top_k = self.top_k_given
            if not self.mode_given:
                self.mode = pl_module.monitor_mode
                self.kth_value = torch.tensor(torch.inf if self.mode == "min" else -torch.inf)
        super().setup(trainer, pl_module, stage)

    def _refresh_last(self, trainer: L.Trainer) -> None:
        if self._should_skip_saving_checkpoint_last(trainer):
            return
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def _should_skip_saving_checkpoint_last(self, trainer: L.Trainer) -> bool:
        """Skip outside fit, in sanity checks, and when ``last.ckpt`` already holds this step."""
        from lightning.pytorch.trainer.states import TrainerFn

        return (
            bool(getattr(trainer, "fast_dev_run", False))
            or trainer.state.fn != TrainerFn.FITTING
            or trainer.sanity_checking
            or (self._last_step_written == trainer.global_step and bool(self.last_model_path))
        )

    @property
    def _last_step_written(self) -> int:
        return int(getattr(self, "_satcnn_last_step", -1))

    def _save_last_checkpoint(self, trainer: L.Trainer, monitor_candidates: dict[str, Any]) -> None:
        super()._save_last_checkpoint(trainer, monitor_candidates)
        self._satcnn_last_step = trainer.global_step

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        super().on_train_batch_end(trainer, pl_module, *args)
        n = self.last_every_n_steps
        if n > 0 and trainer.global_step % n == 0:
            self._refresh_last(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._refresh_last(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._refresh_last(trainer)

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        super().on_exception(trainer, pl_module, exception)
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        if isinstance(exception, SIGTERMException | KeyboardInterrupt):
            self._refresh_last(trainer)


def checkpoint_run_id(ckpt_path: str | Path) -> str | None:
    """The MLflow run a satcnn checkpoint was written by, if it records one.

    Raises:
        ModelError: the file is not a readable satcnn checkpoint (never unpickles objects).
    """
    run_id = read_checkpoint(ckpt_path, "cpu").run_info.get("run_id")
    return str(run_id) if run_id else None
