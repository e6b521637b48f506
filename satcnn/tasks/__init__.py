"""LightningModules: they wire a registered model, a loss, metrics and an optimiser."""

from satcnn.tasks.base import SatcnnTask
from satcnn.tasks.classification import ClassificationTask
from satcnn.tasks.finetuning import FreezeUnfreeze
from satcnn.tasks.segmentation import SegmentationTask

__all__ = ["ClassificationTask", "FreezeUnfreeze", "SatcnnTask", "SegmentationTask"]
