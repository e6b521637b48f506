"""LightningModules: they wire a registered model, a loss, metrics and an optimiser.

The tasks are imported on first use (PEP 562), so importing a light module of this package
(``satcnn.tasks.figures``, for inference's per-tile confusion matrix) does not import Lightning.
"""

from __future__ import annotations

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(
    __name__,
    submod_attrs={
        "base": ["SatcnnTask"],
        "classification": ["ClassificationTask"],
        "finetuning": ["FreezeUnfreeze"],
        "segmentation": ["SegmentationTask"],
    },
)
