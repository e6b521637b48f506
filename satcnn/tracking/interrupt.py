"""A fit stopped by SIGTERM or SIGINT: stop at a step boundary, keep that step, mark the run KILLED.

Lightning already turns SIGTERM into a clean stop: its signal connector sets
``trainer.received_sigterm`` and the loops raise ``SIGTERMException`` at the next batch boundary,
after which every callback's ``on_exception`` runs (:class:`LastStateCheckpoint` writes
``last.ckpt`` there). This callback routes the first SIGINT (Ctrl-C) into that same path, records
which signal stopped the fit, and tells the MLflow logger to end the run as KILLED rather than
FAILED. :class:`satcnn.lightning_cli.SatcnnCLI` then raises :class:`satcnn.errors.Interrupted`.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

import lightning as L
from lightning.pytorch.utilities.exceptions import SIGTERMException

log = logging.getLogger(__name__)


class InterruptHandler(L.Callback):
    """Make SIGINT stop a fit like SIGTERM does, and remember which one stopped it.

    A second SIGINT while stopping raises ``KeyboardInterrupt`` at once.

    Attributes:
        signal: the signal that stopped the fit (``signal.SIGTERM`` or ``signal.SIGINT``), or None.
    """

    def __init__(self) -> None:
        self.signal: int | None = None
        self._sigint_seen = False
        self._previous: Any = None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        if self._sigint_seen:
            raise KeyboardInterrupt
        self._sigint_seen = True
        log.info("SIGINT received: stopping after this step (press Ctrl-C again to stop at once)")
        signal.raise_signal(signal.SIGTERM)  # Lightning's handler: stop at the next batch boundary

    def _restore(self) -> None:
        if self._previous is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore()

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        self._restore()
        if not isinstance(exception, SIGTERMException | KeyboardInterrupt):
            return
        self.signal = (
            signal.SIGINT if self._sigint_seen or isinstance(exception, KeyboardInterrupt) else signal.SIGTERM
        )
        for logger in trainer.loggers:
            mark = getattr(logger, "mark_killed", None)
            if callable(mark):
                mark()
