"""Datasets and LightningDataModules: DeepSat patches and GeoTIFF road scenes.

The DataModules are imported lazily, so data tools (``satcnn data synth-roads``) do not pay
for importing torch and Lightning.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["DeepSatDataModule", "RoadSceneDataModule"]

_LAZY = {
    "DeepSatDataModule": "satcnn.data.deepsat_datamodule",
    "RoadSceneDataModule": "satcnn.data.scenes",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
