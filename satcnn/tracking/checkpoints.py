"""Checkpoint writing: atomic files, and a ``last.ckpt`` that always holds the newest state."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint

from satcnn.checks import require_at_least
from satcnn.io.atomic import atomic_output


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
        **kwargs: ``ModelCheckpoint``'s arguments; ``save_last`` is always on.
    """

    def __init__(self, last_every_n_steps: int = 0, **kwargs: Any) -> None:
        kwargs["save_last"] = True
        super().__init__(**kwargs)
        require_at_least("last_every_n_steps", last_every_n_steps, 0)
        self.last_every_n_steps = last_every_n_steps

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
