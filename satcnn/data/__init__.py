"""Datasets and LightningDataModules: DeepSat patches and GeoTIFF road scenes.

What a task needs from a DataModule is declared in :mod:`satcnn.data.protocol` (imported here,
it needs neither torch nor Lightning). The DataModules are imported lazily, so data tools
(``satcnn data synth-roads``) do not pay for importing torch and Lightning.
"""

from __future__ import annotations

import lazy_loader as lazy

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

# the DataModules load torch and Lightning: imported on first use
__getattr__, _, _ = lazy.attach(
    __name__,
    submod_attrs={
        "deepsat_datamodule": ["DeepSatDataModule"],
        "scenes": ["RoadSceneDataModule"],
    },
)
