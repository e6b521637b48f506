"""Raster input and output: validation, the window reader (pixel contract), COG writing."""

from satcnn.io.cog import AtomicCOGWriter
from satcnn.io.raster import RasterInfo, open_raster
from satcnn.io.reader import FILL_VALUE, WindowReader, alpha_mask_band, validity_rule

__all__ = [
    "FILL_VALUE",
    "AtomicCOGWriter",
    "RasterInfo",
    "WindowReader",
    "alpha_mask_band",
    "open_raster",
    "validity_rule",
]
