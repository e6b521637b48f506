"""Radiometry: the value distribution of bands, and the linear map between two distributions.

Models see raw digital numbers (normalised inside by the training mean and std). Data whose type
or range differs from training (11-bit values in uint16 or float64 for a uint8 model) needs a
stated rule, not a silent cast:

* training records each band's 1st, 2nd, 98th and 99th percentiles (:data:`PERCENTILES`) of
  its valid pixels, from a bounded sample (:class:`PercentileSample`);
* ``percentile`` maps each input band's 2-98% range (from a decimated read, which GDAL serves
  from overviews: :func:`raster_percentiles`) onto the training band's 2-98% range;
* ``MIN,MAX`` maps ``[MIN, MAX]`` of every band onto the training range: ``[0, 255]`` for a
  uint8 model, otherwise each band's 1-99% training range;
* both clip to the training type's range when that type is an integer.

Checkpoints without recorded percentiles use those of a normal distribution with the recorded
mean and std (:func:`normal_percentiles`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from rasterio.windows import Window

if TYPE_CHECKING:
    from satcnn.io.reader import WindowReader

__all__ = [
    "PERCENTILES",
    "LinearMap",
    "PercentileSample",
    "Rescale",
    "normal_percentiles",
    "parse_rescale",
    "raster_percentiles",
    "rescale_map",
]

PERCENTILES: Final = (1.0, 2.0, 98.0, 99.0)
"""The percentiles recorded per band (a checkpoint's ``percentiles``)."""

_Z: Final = {1.0: -2.3263, 2.0: -2.0537, 98.0: 2.0537, 99.0: 2.3263}  # standard normal quantiles

Rescale = str | tuple[float, float]
"""``"none"``, ``"percentile"`` or ``(MIN, MAX)``."""


def parse_rescale(text: str) -> Rescale:
    """``none``, ``percentile`` or ``MIN,MAX`` (numbers, MIN < MAX).

    Raises:
        ValueError: anything else.
    """
    value = text.strip().lower()
    if value in ("none", "percentile"):
        return value
    parts = value.split(",")
    try:
        low, high = (float(p) for p in parts) if len(parts) == 2 else (math.nan, math.nan)
    except ValueError:
        low = high = math.nan
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"must be none, percentile or MIN,MAX with MIN < MAX (e.g. 0,2047), got {text!r}")
    return (low, high)


def normal_percentiles(mean: Sequence[float], std: Sequence[float]) -> list[list[float]]:
    """:data:`PERCENTILES` of normal distributions with ``mean`` and ``std`` (per band)."""
    return [[m + _Z[q] * s for q in PERCENTILES] for m, s in zip(mean, std, strict=True)]


class PercentileSample:
    """A bounded, seeded sample of each band's values, for :data:`PERCENTILES`.

    Args:
        num_bands: bands ``C`` of the arrays passed to :meth:`update`.
        per_update: most pixels kept from one update (drawn without replacement).
        seed: seed of the draws.
    """

    def __init__(self, num_bands: int, per_update: int = 16384, seed: int = 0) -> None:
        self.num_bands = num_bands
        self.per_update = per_update
        self._rng = np.random.default_rng(seed)
        self._parts: list[np.ndarray[Any, Any]] = []

    def update(self, values: np.ndarray[Any, Any]) -> None:
        """Add pixels: ``(C, N)`` values of valid pixels."""
        if values.shape[1] > self.per_update:
            values = values[:, self._rng.choice(values.shape[1], self.per_update, replace=False)]
        self._parts.append(np.asarray(values, dtype=np.float64))

    def percentiles(self) -> list[list[float]]:
        """Per band, the :data:`PERCENTILES` of the sample (empty when no pixel was added)."""
        if not self._parts:
            return []
        data = np.concatenate(self._parts, axis=1)
        if data.shape[1] == 0:
            return []
        return np.percentile(data, PERCENTILES, axis=1).T.tolist()  # type: ignore[no-any-return]


def raster_percentiles(reader: WindowReader, max_side: int = 1024) -> list[list[float]]:
    """Per consumed band, :data:`PERCENTILES` of the valid pixels of a whole-raster decimated read.

    Args:
        reader: A :class:`satcnn.io.reader.WindowReader` (without a rescale).
        max_side: Longest side of the read (nearest neighbour; GDAL serves it from overviews),
            so memory stays bounded whatever the raster's size.
    """
    ds = reader.ds
    scale = max(1.0, max(ds.height, ds.width) / max_side)
    shape = (max(1, math.ceil(ds.height / scale)), max(1, math.ceil(ds.width / scale)))
    data, valid = reader.read(Window(0, 0, ds.width, ds.height), dtype="float64", out_shape=shape)
    values = data[:, valid]
    if values.shape[1] == 0:
        return []
    return np.percentile(values, PERCENTILES, axis=1).T.tolist()  # type: ignore[no-any-return]


@dataclass(frozen=True)
class LinearMap:
    """``y = x * gain + offset`` per band, then clipped to ``[low, high]`` (``None``: no clip)."""

    gain: tuple[float, ...]
    offset: tuple[float, ...]
    low: float | None = None
    high: float | None = None

    def apply(self, data: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """Map ``(C, h, w)`` float data in place and return it."""
        gain = np.asarray(self.gain, data.dtype)[:, None, None]
        offset = np.asarray(self.offset, data.dtype)[:, None, None]
        data *= gain
        data += offset
        if self.low is not None or self.high is not None:
            np.clip(data, self.low, self.high, out=data)
        return data


def _span(low: float, high: float) -> float:
    return high - low if high > low else 1.0  # a constant band maps by offset only


def rescale_map(
    rescale: Rescale,
    source: Sequence[Sequence[float]],
    train: Sequence[Sequence[float]],
    train_dtype: str | None,
) -> LinearMap | None:
    """The map of a rescale rule (``None`` for ``none``).

    Args:
        rescale: ``"none"``, ``"percentile"`` or ``(MIN, MAX)``.
        source: The input's :data:`PERCENTILES` per band (used by ``percentile``).
        train: The training data's :data:`PERCENTILES` per band.
        train_dtype: The training data's type (its range clips the result when an integer).
    """
    if rescale == "none":
        return None
    gains, offsets = [], []
    for b, tr in enumerate(train):
        if isinstance(rescale, tuple):
            lo, hi = rescale
            tlo, thi = (0.0, 255.0) if train_dtype == "uint8" else (tr[0], tr[3])
        else:  # percentile
            lo, hi, tlo, thi = source[b][1], source[b][2], tr[1], tr[2]
        gain = _span(tlo, thi) / _span(lo, hi)
        gains.append(gain)
        offsets.append(tlo - lo * gain)
    low = high = None
    if train_dtype and np.issubdtype(np.dtype(train_dtype), np.integer):
        info = np.iinfo(np.dtype(train_dtype))
        low, high = float(info.min), float(info.max)
    return LinearMap(tuple(gains), tuple(offsets), low, high)
