"""Inference: model loading, window grids, streaming prediction to COGs, the batch runner."""

from satcnn.inference.model_io import LoadedModel, NormalizedModel, load_model
from satcnn.inference.predict import ClassifyStats, PredictStats, classify_raster, predict_raster
from satcnn.inference.runner import InferenceReport, TileResult, resolve_inputs, run_inference, shard_from_env
from satcnn.inference.windows import Tile, tile_grid

__all__ = [
    "ClassifyStats",
    "InferenceReport",
    "LoadedModel",
    "NormalizedModel",
    "PredictStats",
    "Tile",
    "TileResult",
    "classify_raster",
    "load_model",
    "predict_raster",
    "resolve_inputs",
    "run_inference",
    "shard_from_env",
    "tile_grid",
]
