"""MLflow tracking: logger, config, artifact, dataset and system-metric logging, checkpoints, registry.

Names are imported lazily: ``satcnn ui`` and inference need only the store location, not
Lightning and MLflow's model machinery.
"""

from __future__ import annotations

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(
    __name__,
    submod_attrs={
        "callbacks": ["MLflowArtifactsCallback", "MLflowSaveConfigCallback"],
        "checkpoints": ["AtomicCheckpointIO", "checkpoint_run_id"],
        "datasets": ["MLflowDatasetsCallback"],
        "logger": ["SatcnnMLFlowLogger"],
        "registry": ["find_logged_model", "log_checkpoint_model", "register_model"],
        "store": ["default_tracking_uri"],
        "system_metrics": ["SystemMetricsCallback"],
        "ui": ["UiOptions", "serve_ui"],
    },
)
