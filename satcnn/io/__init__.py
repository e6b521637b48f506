"""Raster input and output: validation, the window reader (pixel contract), the window grid, COG
writing, the tags of satcnn's outputs (``output_tags``) and the road-threshold rule (``road_mask``)."""

from satcnn.io.cog import AtomicCOGWriter
from satcnn.io.grid import AxisWindow, Tile, axis_windows, computed_ratio, tile_grid
from satcnn.io.output_tags import OutputTags, RunTags, is_current, read_output_tags, stale_reason
from satcnn.io.raster import RasterInfo, open_raster
from satcnn.io.reader import FILL_VALUE, WindowReader, alpha_mask_band, validity_rule
from satcnn.io.road_mask import RoadEncoding, check_threshold, road_encoding, road_mask

__all__ = [
    "FILL_VALUE",
    "AtomicCOGWriter",
    "AxisWindow",
    "OutputTags",
    "RasterInfo",
    "RoadEncoding",
    "RunTags",
    "Tile",
    "WindowReader",
    "alpha_mask_band",
    "axis_windows",
    "check_threshold",
    "computed_ratio",
    "is_current",
    "open_raster",
    "read_output_tags",
    "road_encoding",
    "road_mask",
    "stale_reason",
    "tile_grid",
    "validity_rule",
]
