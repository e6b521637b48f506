"""Inputs of a batch run: the io layer's expansion (``satcnn.io.inputs``), which ``evaluate`` shares."""

from __future__ import annotations

from satcnn.io.inputs import LIST_SUFFIXES, RASTER_SUFFIXES, resolve_inputs

__all__ = ["LIST_SUFFIXES", "RASTER_SUFFIXES", "resolve_inputs"]
