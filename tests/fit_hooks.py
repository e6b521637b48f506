"""Test hooks for fits run in a subprocess (``--trainer.callbacks+=tests.fit_hooks.SignalAtStep``)."""

from __future__ import annotations

import os
import signal

import lightning as L


class SignalAtStep(L.Callback):
    """Send ``signum`` to this process once ``global_step`` reaches ``step``: a real signal, known step."""

    def __init__(self, step: int, signum: int = int(signal.SIGTERM)) -> None:
        self.step = step
        self.signum = signum
        self.sent = False

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        if not self.sent and trainer.global_step >= self.step:
            self.sent = True
            os.kill(os.getpid(), self.signum)


class WeightSnapshots(L.Callback):
    """Keep the task's network weights at fit start and after every training epoch, with the
    optimiser's learning rate per parameter group (``WeightSnapshots.last`` is the newest instance)."""

    last: WeightSnapshots | None = None

    def __init__(self) -> None:
        self.start: dict[str, object] = {}
        self.epochs: list[dict[str, object]] = []
        self.lrs: list[list[float]] = []
        WeightSnapshots.last = self

    @staticmethod
    def _weights(pl_module: L.LightningModule) -> dict[str, object]:
        return {k: v.detach().clone() for k, v in pl_module.model.state_dict().items()}  # type: ignore[operator]

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start = self._weights(pl_module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.epochs.append(self._weights(pl_module))
        self.lrs.append([float(g["lr"]) for g in trainer.optimizers[0].param_groups])
