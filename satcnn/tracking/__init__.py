"""MLflow tracking: logger, config, artifact, dataset and system-metric logging, checkpoints, registry.

Names are imported lazily: ``satcnn ui`` and inference need only the store location, not
Lightning and MLflow's model machinery.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "AtomicCheckpointIO": "satcnn.tracking.checkpoints",
    "MLflowArtifactsCallback": "satcnn.tracking.callbacks",
    "MLflowDatasetsCallback": "satcnn.tracking.datasets",
    "MLflowSaveConfigCallback": "satcnn.tracking.callbacks",
    "SatcnnMLFlowLogger": "satcnn.tracking.logger",
    "SystemMetricsCallback": "satcnn.tracking.system_metrics",
    "UiOptions": "satcnn.tracking.ui",
    "checkpoint_run_id": "satcnn.tracking.checkpoints",
    "default_tracking_uri": "satcnn.tracking.store",
    "find_logged_model": "satcnn.tracking.registry",
    "log_checkpoint_model": "satcnn.tracking.registry",
    "register_model": "satcnn.tracking.registry",
    "serve_ui": "satcnn.tracking.ui",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
