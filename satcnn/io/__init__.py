"""Raster input and output: validation, window reads, COG writing."""

from satcnn.io.cog import AtomicCOGWriter
from satcnn.io.raster import RasterInfo, open_raster, read_window

__all__ = ["AtomicCOGWriter", "RasterInfo", "open_raster", "read_window"]
