"""The one road-threshold rule: a pixel is road where its probability ``p >= threshold``.

The threshold is a probability in ``[0, 1]`` (``check_threshold``; ``0`` makes every valid pixel
road). ``satcnn infer`` (its masks), ``satcnn vectorize roads``, ``satcnn evaluate roads`` (IoU,
F1, precision, recall and relaxed precision/recall at the threshold) and ``satcnn evaluate graph``
(raster inputs are vectorised) all apply it through ``road_mask`` / ``RoadEncoding.road``.

How stored values become probabilities (``road_encoding``):

* float bands: the value is ``p``; it is compared with the threshold rounded to the band's
  type, so a float32 pixel written as ``0.7`` is road at threshold ``0.7``;
* integer bands with a scale (satcnn's ``prob_uint8`` stores ``round(p * 254)`` with scale
  1/254): ``p = value * scale``, compared exactly: road where ``value >= ceil(threshold / scale)``
  (``value >= 127`` at 0.5). A probability that is a multiple of 1/254 (0, 0.5, 1) therefore
  gives the same mask from the float output and from its uint8 COG; any other gives the same
  mask except for probabilities within half a quantum (1/508) of the threshold, which the
  rounding moves across it;
* other integer bands and satcnn masks (``SATCNN_OUTPUT=mask``): any non-zero value is road,
  whatever the threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import numpy as np
from rasterio.io import DatasetReader

from satcnn.checks import OptionError
from satcnn.io.output_tags import read_output_tags

__all__ = [
    "THRESHOLD_RULE",
    "UINT8_SCALE",
    "RoadEncoding",
    "check_threshold",
    "min_road_value",
    "road_encoding",
    "road_mask",
    "threshold_problem",
]

UINT8_SCALE = 254
"""``prob_uint8`` stores ``round(p * UINT8_SCALE)`` (scale ``1 / UINT8_SCALE``; 255 is nodata)."""

THRESHOLD_RULE = "road where probability >= threshold, threshold in [0, 1]"
"""The rule in words, for ``--help`` texts."""


def threshold_problem(value: float) -> str | None:
    """What is wrong with ``value`` as a road threshold (``must be in [0, 1], got ...``), or None."""
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        return f"must be in [0, 1], got {value}"
    return None


def check_threshold(option: str, value: float) -> float:
    """``value`` if it is a road threshold (in ``[0, 1]``).

    Raises:
        OptionError: ``<option> must be in [0, 1], got <value>`` (a ``ConfigError``).
    """
    if problem := threshold_problem(value):
        raise OptionError(option, problem)
    return value


def road_mask(prob: np.ndarray, threshold: float) -> np.ndarray:
    """``prob >= threshold`` (bool), the threshold rounded to ``prob``'s float type; NaN is not road."""
    return np.greater_equal(prob, np.asarray(threshold, dtype=prob.dtype))


def min_road_value(threshold: float, scale: float) -> int:
    """The smallest stored integer ``v`` with ``v * scale >= threshold``, computed exactly.

    A scale within 1e-6 of ``1 / N`` (GeoTIFF stores 1/254 as a double) counts as ``1 / N``, so
    ``min_road_value(0.5, 1 / 254) == 127``.
    """
    inverse = 1.0 / scale
    n = round(inverse)
    step = Fraction(1, n) if n > 0 and abs(inverse - n) <= 1e-6 * inverse else Fraction(scale)
    return math.ceil(Fraction(threshold) / step)


RoadKind = Literal["probability", "mask"]


@dataclass(frozen=True)
class RoadEncoding:
    """How a road raster's stored values become probabilities and road / not road.

    Attributes:
        kind: ``probability`` (thresholded) or ``mask`` (non-zero is road).
        scale: Integer-coded probabilities: ``p = value * scale``; ``None`` for float values.
    """

    kind: RoadKind
    scale: float | None = None

    def road(self, values: np.ndarray, threshold: float) -> np.ndarray:
        """Road (bool) where the stored ``values`` (any dtype holding them) pass the rule."""
        if self.kind == "mask":
            return np.not_equal(values, 0)
        if self.scale is not None:
            return np.greater_equal(values, min_road_value(threshold, self.scale))
        return road_mask(values, threshold)

    def probability(self, values: np.ndarray) -> np.ndarray:
        """The probabilities (float32) of stored float32 ``values``; a mask gives 0 and 1."""
        if self.kind == "mask":
            return (values != 0).astype(np.float32)
        if self.scale is not None:
            return np.clip(values * self.scale, 0.0, 1.0, dtype=np.float32)
        return values


def road_encoding(ds: DatasetReader) -> RoadEncoding:
    """How to read band 1 of ``ds``: satcnn's outputs by their tags, other rasters by dtype and scale.

    * ``SATCNN_OUTPUT=mask``: a mask;
    * float bands: probabilities;
    * ``SATCNN_OUTPUT=prob_uint8``, or any integer band with a scale other than 1: probability
      ``value * scale`` (``prob_uint8`` without its scale: 1/254);
    * other integer bands (SpaceNet 0/255 masks, synthetic 0/1 masks): masks.

    Raises:
        DataFormatError: ``ds`` is a satcnn output with malformed tags.
    """
    tags = read_output_tags(ds)
    output = tags.output if tags is not None else None
    scale = float(ds.scales[0]) if ds.scales and ds.scales[0] else 1.0
    if output == "mask":
        return RoadEncoding("mask")
    if np.dtype(ds.dtypes[0]).kind == "f":
        return RoadEncoding("probability")
    if scale != 1.0:
        return RoadEncoding("probability", scale)
    if output == "prob_uint8":
        return RoadEncoding("probability", 1.0 / UINT8_SCALE)
    return RoadEncoding("mask")
