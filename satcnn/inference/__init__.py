"""Inference: model loading, window grids, the streaming engine, the batch runner.

Modules, one concept each: ``options`` (the run's options, checked once), ``inputs`` (input
specs to rasters), ``launch`` (shard and device), ``budget`` (window count, output size and
free disk, before the first window), ``engine`` (the streaming read -> compute -> write
pipeline; its parts are ``window_plan``, ``stream_input`` and ``stream_steps``), ``segment`` and
``classify`` (what the engine computes for each task), ``outputs`` (output names; their tags and
staleness are ``satcnn.io.output_tags``), ``jobs`` (the per-tile work of a run: its ``tile_job``
picks ``segmentation_tiles`` or ``classification_tiles``, both ``TileJob``s of ``tile_job``), ``report``,
``manifest``, ``tracking`` (the inference's MLflow run), ``runner`` (the batch run), ``cli``.
"""

from satcnn.inference.classify import ClassifyStats, class_map_transform, classify_raster
from satcnn.inference.engine import PredictStats
from satcnn.inference.launch import resolve_device, shard_from_env
from satcnn.inference.model_io import LoadedModel, NormalizedModel, load_model
from satcnn.inference.options import InferenceOptions, OptionError, OutputType
from satcnn.inference.report import InferenceReport, TileResult
from satcnn.inference.runner import run_inference
from satcnn.inference.segment import predict_raster
from satcnn.inference.windows import Tile, tile_grid
from satcnn.io.inputs import resolve_inputs

__all__ = [
    "ClassifyStats",
    "InferenceOptions",
    "InferenceReport",
    "LoadedModel",
    "NormalizedModel",
    "OptionError",
    "OutputType",
    "PredictStats",
    "Tile",
    "TileResult",
    "class_map_transform",
    "classify_raster",
    "load_model",
    "predict_raster",
    "resolve_device",
    "resolve_inputs",
    "run_inference",
    "shard_from_env",
    "tile_grid",
]
