"""MLflow tracking: the default logger, config and artifact logging, atomic checkpoints."""

from satcnn.tracking.checkpoints import AtomicCheckpointIO
from satcnn.tracking.mlflow import (
    MLflowArtifactsCallback,
    MLflowSaveConfigCallback,
    SatcnnMLFlowLogger,
    checkpoint_run_id,
    default_tracking_uri,
)
from satcnn.tracking.registry import log_checkpoint_model, register_model

__all__ = [
    "AtomicCheckpointIO",
    "MLflowArtifactsCallback",
    "MLflowSaveConfigCallback",
    "SatcnnMLFlowLogger",
    "checkpoint_run_id",
    "default_tracking_uri",
    "log_checkpoint_model",
    "register_model",
]
