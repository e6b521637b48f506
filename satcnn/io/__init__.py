"""Raster input and output: validation, window reads, the window grid, COG writing."""

from satcnn.io.cog import AtomicCOGWriter
from satcnn.io.grid import AxisWindow, Tile, axis_windows, computed_ratio, tile_grid
from satcnn.io.raster import RasterInfo, open_raster, read_window

__all__ = [
    "AtomicCOGWriter",
    "AxisWindow",
    "RasterInfo",
    "Tile",
    "axis_windows",
    "computed_ratio",
    "open_raster",
    "read_window",
    "tile_grid",
]
