"""Raster input and output: validation, the window reader (pixel contract), the window grid, COG writing."""

from satcnn.io.cog import AtomicCOGWriter
from satcnn.io.grid import AxisWindow, Tile, axis_windows, computed_ratio, tile_grid
from satcnn.io.raster import RasterInfo, open_raster
from satcnn.io.reader import FILL_VALUE, WindowReader, alpha_mask_band, validity_rule

__all__ = [
    "FILL_VALUE",
    "AtomicCOGWriter",
    "AxisWindow",
    "RasterInfo",
    "Tile",
    "WindowReader",
    "alpha_mask_band",
    "axis_windows",
    "computed_ratio",
    "open_raster",
    "tile_grid",
    "validity_rule",
]
