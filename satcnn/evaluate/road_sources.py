"""Window reads for road evaluation: predictions as probabilities, truth as road / not road.

A prediction is read through the pixel contract's :class:`~satcnn.io.reader.WindowReader` (its
nodata value and internal mask make pixels invalid, which then do not count). Its values become
road probabilities in [0, 1], and road / not road at a threshold, by the one road rule of
:mod:`satcnn.io.road_mask` (:func:`~satcnn.io.road_mask.road_encoding`: satcnn's tags, else the
data type):

* floating point: the values themselves (``satcnn infer --output prob_float32``);
* integers with a scale other than 1: value times scale (``prob_uint8`` stores 1/254);
* integers without a scale: a mask, any non-zero value is road (``mask``: 0/1, nodata 255).

Truth rasters follow the road-mask rule of ``docs/architecture.md``: any non-zero value is road
and the mask's own nodata value is not used (255 is road in Massachusetts masks). Centreline
vectors are buffered to ``buffer_m`` and rasterised on the prediction's grid
(:func:`satcnn.data.labels.rasterize_centerlines`), once per tile, as a uint8 array in memory.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.enums import Resampling
from rasterio.io import DatasetReader
from rasterio.windows import Window

from satcnn.errors import ConfigError, DataFormatError, require_file
from satcnn.evaluate.align import is_vector
from satcnn.io.raster import open_dataset
from satcnn.io.reader import WindowReader
from satcnn.io.road_mask import road_encoding

__all__ = ["PredictionReader", "TruthReader", "padded"]


def padded(array: np.ndarray, window: Window) -> np.ndarray:
    """``array[window]`` of a 2-D array, zero beyond its edges (windows may leave it)."""
    h, w = int(window.height), int(window.width)
    r0, c0 = int(window.row_off), int(window.col_off)
    out = np.zeros((h, w), dtype=array.dtype)
    rr0, cc0 = max(r0, 0), max(c0, 0)
    rr1, cc1 = min(r0 + h, array.shape[0]), min(c0 + w, array.shape[1])
    if rr1 > rr0 and cc1 > cc0:
        out[rr0 - r0 : rr1 - r0, cc0 - c0 : cc1 - c0] = array[rr0:rr1, cc0:cc1]
    return out


class PredictionReader:
    """Road probabilities and validity of one prediction raster, window by window.

    Args:
        ds: The open prediction (band 1 is read).
        path: Its path, for error messages.
    """

    def __init__(self, ds: DatasetReader, path: Path) -> None:
        self.path = path
        self.reader = WindowReader(ds, 1)
        self.encoding = road_encoding(ds)
        self.kind = self.encoding.kind

    def read(self, window: Window, out_shape: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(probability float32 (h, w), valid bool (h, w))``; invalid pixels hold 0.

        ``out_shape`` decimates a window inside the raster (nearest neighbour, for figures).

        Raises:
            DataFormatError: a floating-point prediction has valid values outside [0, 1].
        """
        prob, _, valid = self.read_road(window, None, out_shape)
        return prob, valid

    def read_road(
        self, window: Window, threshold: float | None, out_shape: tuple[int, int] | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(probability, road, valid)``: ``read`` plus road (bool) at ``threshold`` (the road rule).

        ``road`` is all False when ``threshold`` is None; invalid pixels are never road.
        """
        data, valid = self.reader.read(window, dtype="float32", out_shape=out_shape)
        band = data[0]
        if self.encoding.kind == "probability" and self.encoding.scale is None:
            values = band[valid]
            if values.size and (not np.isfinite(values).all() or values.min() < 0 or values.max() > 1):
                raise DataFormatError(
                    f"road probabilities must lie in [0, 1]; found {np.nanmin(values):g} to "
                    f"{np.nanmax(values):g}. Pass probabilities (sigmoid of logits) or a 0/1 mask",
                    self.path,
                )
        road = np.zeros_like(valid) if threshold is None else self.encoding.road(band, threshold) & valid
        return self.encoding.probability(band), road, valid


class TruthReader:
    """True roads on a prediction's grid, window by window: from a raster or buffered centrelines.

    Args:
        truth: A road-mask raster aligned with the prediction, or a centreline vector file.
        prediction: The prediction raster (the grid vectors are rasterised on).
        buffer_m: Full road width in metres for vectors.

    Raises:
        ConfigError: ``truth`` is a vector file and ``buffer_m`` is not given.
    """

    def __init__(self, truth: Path, prediction: Path, buffer_m: float | None) -> None:
        self.path = truth
        self.prediction = prediction
        self.buffer_m = buffer_m
        self.vector = is_vector(truth)
        self.array: np.ndarray | None = None
        self.ds: Any = None
        self._stack = ExitStack()
        if self.vector:
            require_file(truth, "centreline file")
        if self.vector and buffer_m is None:
            raise ConfigError(
                "truth is a centreline vector file; give the road width to buffer it to "
                "(--buffer-m, e.g. 8 for two-lane roads)",
                truth,
            )

    def open(self) -> None:
        """Open a truth raster, or rasterise the centrelines on the prediction's grid."""
        if self.vector:
            from satcnn.data.labels import rasterize_centerlines

            assert self.buffer_m is not None
            self.array = rasterize_centerlines(self.path, self.prediction, self.buffer_m)
        else:
            self.ds = self._stack.enter_context(open_dataset(self.path))

    def close(self) -> None:
        """Close the raster or drop the rasterised centrelines."""
        if self.ds is not None:
            self._stack.close()
        self.ds, self.array = None, None

    def __enter__(self) -> TruthReader:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read_decimated(self, out_shape: tuple[int, int]) -> np.ndarray:
        """The whole truth decimated to ``out_shape`` (nearest neighbour), road True, for figures."""
        if self.array is not None:
            h, w = self.array.shape
            rows = (np.arange(out_shape[0]) * h // out_shape[0])[:, None]
            cols = (np.arange(out_shape[1]) * w // out_shape[1])[None, :]
            return self.array[rows, cols] != 0
        return self.ds.read(1, out_shape=out_shape, resampling=Resampling.nearest) != 0

    def read(self, window: Window) -> np.ndarray:
        """Road (True) / not road of ``window`` as a bool ``(h, w)`` array; False beyond the edges."""
        if self.array is not None:
            return padded(self.array, window) != 0
        ds = self.ds
        inside = window.intersection(Window(0, 0, ds.width, ds.height))  # type: ignore[call-arg]
        data = ds.read(1, window=inside)
        full = np.zeros((int(window.height), int(window.width)), dtype=data.dtype)
        r, c = int(inside.row_off - window.row_off), int(inside.col_off - window.col_off)
        full[r : r + data.shape[0], c : c + data.shape[1]] = data
        return full != 0
