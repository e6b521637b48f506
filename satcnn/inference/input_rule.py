"""How inference reads a raster for a model: band selection, band checks and radiometry.

One :class:`InputRule` per run, built from the checkpoint record and ``--bands`` /
``--rescale``; :meth:`InputRule.reader` applies it to each raster, before any compute:

1. **Bands.** ``--bands`` (indexes or names, :mod:`satcnn.io.bands`) selects the source bands
   in the model's order. Without it, the model's band names are looked up in the raster's band
   descriptions; when not all are there, the training files' source indexes (recorded in the
   checkpoint) are used, and failing those the first bands (the raster must then have exactly
   the model's band count, or more where every extra band is alpha).
2. **Checks.** Without ``--bands``, a consumed band that is constant over the raster's overview,
   or tagged alpha and holding only mask values, is refused (naming the file and band); a band
   tagged alpha with varying values is used with a warning. An explicit ``--bands`` lifts this.
3. **Radiometry.** With no ``--rescale`` (strict), a raster whose data type differs from the
   training data's is refused with an error that names ``--rescale``; so is a uint16 or float
   raster of the training type whose 98th percentile is more than :data:`RANGE_FACTOR` times
   above or below the training data's, in any band (0-1 reflectance against 0-10000 digital
   numbers; uint8 is not checked, its scenes differ in brightness within one range). ``--rescale none`` reads
   values as they are; ``percentile`` and ``MIN,MAX`` map them onto the training range
   (:mod:`satcnn.io.radiometry`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rasterio.io import DatasetReader

from satcnn.errors import RasterError
from satcnn.io.bands import BandSpec, check_band_content, match_band_names, select_bands
from satcnn.io.radiometry import Rescale, normal_percentiles, raster_percentiles, rescale_map
from satcnn.io.raster import check_band_count
from satcnn.io.reader import WindowReader

logger = logging.getLogger(__name__)

__all__ = ["RANGE_FACTOR", "InputRule"]

RANGE_FACTOR = 8.0
"""How far (as a ratio) a band's 98th percentile may lie from training's before strict mode refuses."""


@dataclass(frozen=True)
class InputRule:
    """The model's input rule (see the module docstring).

    Attributes:
        bands: The model's band names, in order.
        spec: ``--bands`` as parsed, or ``None``.
        sources: The training files' 1-based source indexes (empty: unknown).
        dtype: The training data's type (``None``: unknown, not checked).
        percentiles: The training data's per-band percentiles (``satcnn.io.radiometry``).
        rescale: ``--rescale`` as parsed, or ``None`` (strict).
        recorded: Whether ``percentiles`` were recorded at training (else estimated: no range check).
    """

    bands: tuple[str, ...]
    spec: BandSpec | None = None
    sources: tuple[int, ...] = ()
    dtype: str | None = None
    percentiles: tuple[tuple[float, ...], ...] = ()
    rescale: Rescale | None = None
    recorded: bool = False

    @classmethod
    def of(
        cls,
        bands: Sequence[str],
        mean: Sequence[float],
        std: Sequence[float],
        *,
        sources: Sequence[int] = (),
        dtype: str | None = None,
        percentiles: Sequence[Sequence[float]] = (),
        spec: BandSpec | None = None,
        rescale: Rescale | None = None,
    ) -> InputRule:
        """A rule from a checkpoint record's values (percentiles estimated from mean/std if absent)."""
        pcts = percentiles or normal_percentiles(mean, std)
        rows = tuple(tuple(p) for p in pcts)
        return cls(tuple(bands), spec, tuple(sources), dtype, rows, rescale, bool(percentiles))

    def indexes(self, ds: DatasetReader, path: Path) -> list[int]:
        """The source bands of ``ds`` the model reads (step 1), checked (step 2)."""
        if self.spec is not None:
            selection = select_bands(ds, self.spec, path)
            if len(selection.indexes) != len(self.bands):
                raise RasterError(
                    f"--bands selects {len(selection.indexes)} bands; the model reads "
                    f"{len(self.bands)} ({', '.join(self.bands)})",
                    path,
                )
            return list(selection.indexes)
        indexes = match_band_names(ds, self.bands) if _described(ds) else None
        sources = list(self.sources)
        moved = sources != list(range(1, len(self.bands) + 1))
        if indexes is None and sources and moved and max(sources) <= ds.count:
            indexes = sources
        if indexes is None:
            check_band_count(path, tuple(ds.colorinterp), ds.count, list(self.bands))
            indexes = list(range(1, len(self.bands) + 1))
        check_band_content(ds, indexes, path)
        return indexes

    def reader(self, ds: DatasetReader, path: Path) -> WindowReader:
        """The window reader of ``ds`` under this rule (steps 1-3).

        Raises:
            RasterError: naming ``path``: unknown bands, bands without data, or a data type that
                differs from training without ``--rescale``.
        """
        indexes = self.indexes(ds, path)
        dtype = ds.dtypes[indexes[0] - 1]
        if self.rescale is None:
            if self.dtype is not None and dtype != self.dtype:
                raise RasterError(
                    f"data type {dtype} is not supported; expected one of {self.dtype} (the model's "
                    "training data). Pass --rescale percentile (maps each band's 2-98% range to the "
                    "training range), --rescale MIN,MAX (e.g. 0,2047 for 11-bit data) or --rescale "
                    "none (values as they are)",
                    path,
                )
            reader = WindowReader(ds, indexes=indexes)
            if self.recorded and dtype != "uint8":
                self._check_range(raster_percentiles(reader), path)
            return reader
        source: list[list[float]] = []
        if self.rescale == "percentile":
            source = raster_percentiles(WindowReader(ds, indexes=indexes))
            if not source:
                raise RasterError("has no valid pixel to take percentiles from (--rescale percentile)", path)
        linear = rescale_map(self.rescale, source, self.percentiles, self.dtype)
        logger.info("%s: bands %s, rescale %s: %s", path, indexes, self.rescale, linear)
        return WindowReader(ds, indexes=indexes, rescale=linear)

    def _check_range(self, source: list[list[float]], path: Path) -> None:
        for band, (src, train) in enumerate(zip(source, self.percentiles, strict=True)):
            have, want = abs(src[2]), abs(train[2])
            if max(have, want) > RANGE_FACTOR * max(min(have, want), 1e-12):
                raise RasterError(
                    f"band {band + 1} of the model ({self.bands[band]}) reaches {src[2]:.4g} at its 98th "
                    f"percentile, the training data {train[2]:.4g}: another value range. Pass --rescale "
                    "percentile (maps each band's 2-98% range to the training range), --rescale MIN,MAX "
                    "or --rescale none (values as they are)",
                    path,
                )


def _described(ds: DatasetReader) -> bool:
    return any(ds.descriptions)
