"""LightningModules: they wire a registered model, a loss, metrics and an optimiser.

The tasks are imported on first use (PEP 562), so importing a light module of this package
(``satcnn.tasks.figures``, for inference's per-tile confusion matrix) does not import Lightning.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from satcnn.tasks.base import SatcnnTask
    from satcnn.tasks.classification import ClassificationTask
    from satcnn.tasks.finetuning import FreezeUnfreeze
    from satcnn.tasks.segmentation import SegmentationTask

__all__ = ["ClassificationTask", "FreezeUnfreeze", "SatcnnTask", "SegmentationTask"]

_MODULES = {
    "ClassificationTask": "satcnn.tasks.classification",
    "FreezeUnfreeze": "satcnn.tasks.finetuning",
    "SatcnnTask": "satcnn.tasks.base",
    "SegmentationTask": "satcnn.tasks.segmentation",
}


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return getattr(import_module(_MODULES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
