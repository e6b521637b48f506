"""System metrics (CPU, memory, disk, network; GPU when nvidia-ml-py is installed) in a fit's MLflow run.

MLflow's own ``SystemMetricsMonitor`` samples them in a daemon thread and logs ``system/...``
metrics (``system/cpu_utilization_percentage``, ``system/system_memory_usage_megabytes``,
``system/gpu_0_utilization_percentage``...). Lightning's logger owns the run, so the monitor is
attached to that run id at fit start (rank 0) and stopped when the fit ends or fails: the thread
never outlives the fit. A busy or failing store stops the sampling with a warning; it never fails
the fit. ``satcnn fit --system_metrics false`` turns it off; ``--system_metrics_interval`` sets the
sampling period (MLflow's ``MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL`` still overrides it).
"""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
from lightning.pytorch.utilities import rank_zero_only

from satcnn.checks import require_above, require_at_least
from satcnn.tracking.logger import logger_tracking_uri, mlflow_logger

log = logging.getLogger(__name__)

__all__ = ["SystemMetricsCallback"]


class SystemMetricsCallback(L.Callback):
    """Sample system metrics into the fit's MLflow run from fit start to fit end (rank 0).

    Args:
        interval: Seconds between samples.
        samples_before_logging: Samples averaged into each logged point.
    """

    def __init__(self, interval: float = 10.0, samples_before_logging: int = 1) -> None:
        require_above("interval", interval, unit="seconds")
        require_at_least("samples_before_logging", samples_before_logging, 1)
        self.interval = interval
        self.samples_before_logging = samples_before_logging
        self.monitor: Any | None = None

    @rank_zero_only
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        logger = mlflow_logger(trainer)
        if logger is None or logger.run_id is None or self.monitor is not None:
            return
        try:
            from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

            monitor = SystemMetricsMonitor(
                logger.run_id,
                sampling_interval=self.interval,
                samples_before_logging=self.samples_before_logging,
                resume_logging=True,  # a resumed run continues its system-metric steps
                tracking_uri=logger_tracking_uri(logger),
            )
            monitor.start()
        except Exception as err:  # metrics about the machine must never stop the fit
            log.warning("system metrics are off for this fit: %s", err)
            return
        self.monitor = monitor

    def stop(self) -> None:
        """Stop sampling, wait for the thread and log what it still holds (idempotent)."""
        monitor, self.monitor = self.monitor, None
        if monitor is None:
            return
        try:
            monitor.finish()
        except Exception as err:
            log.warning("stopping the system metrics monitor: %s", err)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.stop()

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        self.stop()

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.stop()
