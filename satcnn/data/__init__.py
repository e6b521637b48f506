"""Datasets and LightningDataModules: DeepSat patches and GeoTIFF road scenes.

What a task needs from a DataModule is declared in :mod:`satcnn.data.protocol` (imported here,
it needs neither torch nor Lightning). The DataModules are imported lazily, so data tools
(``satcnn data synth-roads``) do not pay for importing torch and Lightning.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from satcnn.data.protocol import BandPercentiles, ClassData, DataRoot, RasterBands, TaskData

__all__ = [
    "BandPercentiles",
    "ClassData",
    "DataRoot",
    "DeepSatDataModule",
    "RasterBands",
    "RoadSceneDataModule",
    "TaskData",
]

_LAZY = {
    "DeepSatDataModule": "satcnn.data.deepsat_datamodule",
    "RoadSceneDataModule": "satcnn.data.scenes",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
