"""Raster input and output: validation, window reads, COG writing."""
