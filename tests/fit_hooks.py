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
