"""The pixel contract: one window reader and one validity rule for training and inference.

Every model input in satcnn (training patches, validation grid windows, inference windows and
blocks, band statistics) is read by :class:`WindowReader`, so a model sees the same pixels in
training and in inference.

A model consumes the first ``bands`` bands of a raster, or the source bands a selection names
(``indexes``, see :mod:`satcnn.io.bands`), in that order. A pixel of a window is **invalid** where

- it lies outside the raster;
- the raster's nodata value says so: every consumed band equals its nodata value (NaN for a
  NaN nodata); a band without a nodata value is never nodata;
- the raster's internal (or ``.msk``) mask is 0;
- an alpha band **not consumed** (beyond the consumed bands, or not selected) is 0 (see
  :func:`alpha_mask_band`). An alpha band the model consumes is data and gives no mask.

Invalid pixels hold :data:`FILL_VALUE` (raw 0, before normalisation) in every consumed band,
the value the model already sees beyond the raster edge; training excludes them from loss and
metrics, and inference writes nodata there.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
from rasterio.enums import ColorInterp, MaskFlags, Resampling
from rasterio.io import DatasetReader
from rasterio.windows import Window

from satcnn.errors import RasterError
from satcnn.io.radiometry import LinearMap

logger = logging.getLogger(__name__)

__all__ = [
    "FILL_VALUE",
    "ValidityRule",
    "WindowReader",
    "accepts_bands",
    "alpha_mask_band",
    "consumed_bands",
    "validity_rule",
]

FILL_VALUE: Final = 0
"""Raw value of every invalid pixel in every consumed band (nodata, masked, beyond the edge).

Raw 0 rather than, say, the band mean: it needs no statistics (the reader sits below
normalisation), it is what boundless reads beyond the raster edge already give, and it is what
inference has always filled with, so outputs of existing models do not change.
"""


def consumed_bands(bands: int | Sequence[str] | None, count: int) -> int:
    """Number of bands a model consumes: ``bands`` (a count or band names), or all ``count``."""
    if bands is None:
        return count
    return bands if isinstance(bands, int) else len(bands)


def alpha_mask_band(
    colorinterp: Sequence[ColorInterp], bands: int, indexes: Sequence[int] | None = None
) -> int | None:
    """The alpha rule: which band, if any, masks the input of a model reading ``bands`` bands.

    Alpha (colour interpretation ``alpha``, which is also where GDAL's per-dataset alpha mask
    comes from) is a mask only when it lies beyond the bands the model consumes: an RGBA raster
    for a 3-band model, or an RGBN + alpha raster for a 4-band model. A band the model consumes
    is data, whatever its colour interpretation, and gives no mask (an RGBN raster whose NIR
    band is tagged alpha feeds a 4-band model unmasked).

    Args:
        colorinterp: The raster's colour interpretation per band (``ds.colorinterp``).
        bands: How many leading bands the model consumes.
        indexes: The 1-based source bands consumed, when a selection names them (then an
            alpha band not among them is the mask); ``None``: the first ``bands``.

    Returns:
        The 1-based index of the first alpha band not consumed, or ``None``.
    """
    consumed = set(indexes) if indexes is not None else set(range(1, bands + 1))
    for index in range(len(colorinterp)):
        if index + 1 not in consumed and colorinterp[index] == ColorInterp.alpha:
            return index + 1
    return None


def accepts_bands(colorinterp: Sequence[ColorInterp], bands: int) -> bool:
    """Whether a raster can feed a model reading ``bands`` bands.

    It can when it has exactly that many bands, or more where every band beyond them is alpha
    (used as the mask by :func:`alpha_mask_band`).
    """
    if len(colorinterp) < bands:
        return False
    return all(ci == ColorInterp.alpha for ci in colorinterp[bands:])


@dataclass(frozen=True)
class ValidityRule:
    """Where the invalid pixels of one raster come from, for a model reading ``bands`` bands.

    Attributes:
        bands: Number of consumed bands (the raster's first ``bands``, or ``indexes``).
        nodata: Nodata value per consumed band (``None``: that band has none).
        mask_bands: Bands whose GDAL mask (internal or ``.msk``, not alpha- or nodata-derived)
            is read: the first band for a per-dataset mask, every consumed band for per-band
            masks, none otherwise. A pixel is valid where any of them is non-zero.
        alpha: 1-based index of the alpha band that is not consumed, or ``None``.
        indexes: 1-based source bands consumed, in order.
    """

    bands: int
    nodata: tuple[float | None, ...]
    mask_bands: tuple[int, ...]
    alpha: int | None
    indexes: tuple[int, ...] = field(default=(), compare=False)  # the rule is the four above

    @property
    def all_valid(self) -> bool:
        """Whether every pixel inside the raster is valid."""
        return all(v is None for v in self.nodata) and not self.mask_bands and self.alpha is None


def validity_rule(
    ds: DatasetReader, bands: int | None = None, indexes: Sequence[int] | None = None
) -> ValidityRule:
    """The validity rule of ``ds`` for a model reading its first ``bands`` bands (default all),
    or the source bands ``indexes`` (1-based, in order; then ``bands`` is ignored).

    GDAL derives a band's mask from (in its order) an internal mask, the nodata value, or an
    alpha band. The nodata value and alpha are handled here explicitly (see the module
    docstring); only a genuine internal mask is taken from GDAL's mask flags.

    Raises:
        RasterError: ``bands`` is not in ``[1, ds.count]``, or an index is not a band of ``ds``.
    """
    if indexes is not None:
        idx = tuple(indexes)
        if not idx or not all(1 <= i <= ds.count for i in idx):
            raise RasterError(f"model reads bands {list(idx)}; file has {ds.count}", ds.name)
    else:
        n = ds.count if bands is None else bands
        if not 1 <= n <= ds.count:
            raise RasterError(f"model reads {n} bands; file has {ds.count}", ds.name)
        idx = tuple(range(1, n + 1))
    nodata = tuple(None if ds.nodatavals[i - 1] is None else float(ds.nodatavals[i - 1]) for i in idx)
    band_flags = ds.mask_flag_enums  # one GDAL query for all bands
    flags = [band_flags[i - 1] for i in idx]
    if all(MaskFlags.per_dataset in f and MaskFlags.alpha not in f for f in flags):
        mask_bands: tuple[int, ...] = (1,)
    elif all(not f for f in flags):  # GDAL reports per-band internal masks as no flags
        mask_bands = idx
    else:
        mask_bands = ()
    alpha = alpha_mask_band(ds.colorinterp, len(idx), idx)
    return ValidityRule(len(idx), nodata, mask_bands, alpha, idx)


class WindowReader:
    """Reads model inputs from one open raster: consumed bands, fill and valid mask.

    Args:
        ds: An open dataset (the reader does not close it).
        bands: The number of leading bands the model consumes, or their names; ``None`` reads
            every band.
        indexes: The 1-based source bands to read, in the model's order (a band selection,
            :mod:`satcnn.io.bands`); overrides ``bands``.
        rescale: A per-band linear map applied to valid pixels as they are read (inference's
            ``--rescale``, :mod:`satcnn.io.radiometry`); invalid pixels still hold the fill.

    Raises:
        RasterError: ``bands`` or ``indexes`` asks for bands the file does not have.
    """

    def __init__(
        self,
        ds: DatasetReader,
        bands: int | Sequence[str] | None = None,
        *,
        indexes: Sequence[int] | None = None,
        rescale: LinearMap | None = None,
    ) -> None:
        self.ds = ds
        self.rule = validity_rule(ds, consumed_bands(bands, ds.count), indexes)
        self.indexes = list(self.rule.indexes)
        self.rescale = rescale

    def read(
        self,
        window: Window,
        *,
        dtype: str | np.dtype[Any] = "float32",
        out_shape: tuple[int, int] | None = None,
        out: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Read ``window``, which may start before or end beyond the raster.

        Only the part inside the raster is read from disk. Invalid pixels hold
        :data:`FILL_VALUE` in every band.

        Args:
            window: Integer pixel window.
            dtype: Data type of the returned data (the file's own type skips a conversion).
            out_shape: ``(rows, cols)`` to decimate to (nearest neighbour; GDAL serves it from
                overviews when present); only for windows inside the raster.
            out: A C-contiguous ``(bands, rows, cols)`` array to read into, in its own dtype
                (``dtype`` is then ignored): a slot of a batch. A window inside the raster, in the
                file's type and without rescaling, is read in place (no copy). Returned as ``data``.

        Returns:
            ``(data, valid)``: ``data`` is ``(bands, rows, cols)`` of ``dtype``; ``valid`` is a
            boolean ``(rows, cols)`` array, True where the pixel is valid.

        Raises:
            ValueError: ``out_shape`` with a window that leaves the raster.
        """
        h, w = int(window.height), int(window.width)
        r0, c0 = int(window.row_off), int(window.col_off)
        rr0, cc0 = max(r0, 0), max(c0, 0)
        rr1, cc1 = min(r0 + h, self.ds.height), min(c0 + w, self.ds.width)
        inside = (rr0, cc0, rr1, cc1) == (r0, c0, r0 + h, c0 + w)
        if out is not None:
            if out_shape is not None or out.shape != (self.rule.bands, h, w):
                raise ValueError(f"out must be {(self.rule.bands, h, w)} without out_shape, got {out.shape}")
            if inside and self.rescale is None and out.dtype == np.dtype(self.ds.dtypes[0]):
                return self._read_inside(window, None, out.dtype, out)
            out[...], valid = self.read(window, dtype=out.dtype)
            return out, valid
        if inside:  # no fill buffer, no copy
            return self._read_inside(window, out_shape, dtype)
        if out_shape is not None:
            raise ValueError(f"out_shape needs a window inside the raster, got {window}")
        data = np.full((self.rule.bands, h, w), FILL_VALUE, dtype=dtype)
        valid = np.zeros((h, w), dtype=bool)
        if rr1 <= rr0 or cc1 <= cc0:
            return data, valid
        src_win = Window(cc0, rr0, cc1 - cc0, rr1 - rr0)  # type: ignore[call-arg]
        sl = (slice(rr0 - r0, rr1 - r0), slice(cc0 - c0, cc1 - c0))
        data[(slice(None), *sl)], valid[sl] = self._read_inside(src_win, None, dtype)
        return data, valid

    def _read_inside(
        self,
        window: Window,
        out_shape: tuple[int, int] | None,
        dtype: str | np.dtype[Any],
        out: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        decimate: dict[str, Any] = {}
        if out_shape is not None:
            decimate = {"out_shape": (self.rule.bands, *out_shape), "resampling": Resampling.nearest}
        if out is not None:
            decimate["out"] = out  # the file's type: read in place
        raw = self.ds.read(self.indexes, window=window, **decimate)
        valid = self._valid(raw, window, out_shape)
        data = raw.astype(dtype, copy=False)  # no copy in the file's type (and for ``out``)
        if self.rescale is not None:
            data = self.rescale.apply(data)  # float data: the rescaled reader is inference's
        if not self.rule.all_valid and not valid.all():
            data[:, ~valid] = FILL_VALUE
        return data, valid

    def _valid(self, raw: np.ndarray, window: Window, out_shape: tuple[int, int] | None) -> np.ndarray:
        rule = self.rule
        valid = np.ones(raw.shape[1:], dtype=bool)
        if rule.all_valid:
            return valid
        decimate: dict[str, Any] = {}
        if out_shape is not None:
            decimate = {"out_shape": out_shape, "resampling": Resampling.nearest}
        if any(v is not None for v in rule.nodata):
            is_nodata = np.ones_like(valid)
            for band, nd in zip(raw, rule.nodata, strict=True):
                is_nodata &= _equals_nodata(band, nd)
            valid &= ~is_nodata
        if rule.mask_bands:
            masked = np.zeros_like(valid)
            for index in rule.mask_bands:
                masked |= self.ds.read_masks(index, window=window, **decimate) > 0
            valid &= masked
        if rule.alpha is not None:
            valid &= self.ds.read(rule.alpha, window=window, **decimate) > 0
        return valid


def _equals_nodata(band: np.ndarray, nodata: float | None) -> np.ndarray:
    """Where ``band`` holds ``nodata`` (as stored in the band's type; never for ``None``)."""
    if nodata is None:
        return np.zeros(band.shape, dtype=bool)
    if math.isnan(nodata):
        return np.isnan(band) if np.issubdtype(band.dtype, np.floating) else np.zeros(band.shape, bool)
    stored = np.asarray(nodata).astype(band.dtype)
    if not np.issubdtype(band.dtype, np.floating) and float(stored) != nodata:
        return np.zeros(band.shape, dtype=bool)  # not representable: no pixel can hold it
    return band == stored
