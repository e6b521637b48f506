"""Former home of ``predict_raster`` and ``classify_raster``; kept so that existing imports work.

The streaming engine is ``satcnn.inference.engine``; segmentation is ``satcnn.inference.segment``
and classification ``satcnn.inference.classify``. Import from those (or ``satcnn.inference``).
"""

from satcnn.inference.classify import (
    CLASS_NODATA,
    ClassifyStats,
    class_map_transform,
    classify_raster,
    default_colormap,
)
from satcnn.inference.engine import PredictStats
from satcnn.inference.segment import DEFAULT_NODATA, UINT8_SCALE, predict_raster

__all__ = [
    "CLASS_NODATA",
    "DEFAULT_NODATA",
    "UINT8_SCALE",
    "ClassifyStats",
    "PredictStats",
    "class_map_transform",
    "classify_raster",
    "default_colormap",
    "predict_raster",
]
