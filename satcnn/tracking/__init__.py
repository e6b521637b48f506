"""MLflow tracking: the default logger, config and artifact logging, atomic checkpoints."""

from satcnn.tracking.checkpoints import AtomicCheckpointIO
from satcnn.tracking.mlflow import (
    MLflowArtifactsCallback,
    MLflowSaveConfigCallback,
    SatcnnMLFlowLogger,
    default_tracking_uri,
)

__all__ = [
    "AtomicCheckpointIO",
    "MLflowArtifactsCallback",
    "MLflowSaveConfigCallback",
    "SatcnnMLFlowLogger",
    "default_tracking_uri",
]
