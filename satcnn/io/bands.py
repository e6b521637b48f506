"""Band selection: which source bands feed a model, in which order, and whether they hold data.

A band spec lists the bands a model consumes, in the model's order, as 1-based source indexes
(``"4,3,2,5"``) or as names (``"red,green,blue,nir"``). A name matches a band whose description
or, failing that, colour interpretation is that name, case-insensitively and with aliases
(``nir`` = ``near-infrared`` = ``nir1``; ``r`` = ``red``; ``pan`` = ``gray``; see
:data:`ALIASES`). Descriptions come first: GDAL tags band 4 of any 4-band uint8 GTiff as alpha.

:func:`check_band_content` is the default guard of inference: a consumed band that is constant
over the raster's overview, or tagged alpha and holding only mask values (0 and 255), is no
model input. A consumed band tagged alpha with varying values (the SAT-6 patch GeoTIFFs tag
NIR as alpha) is data: it is used, with a warning (once per run for many files, :mod:`satcnn.io.notes`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
from rasterio.enums import ColorInterp, Resampling
from rasterio.io import DatasetReader

from satcnn.errors import RasterError
from satcnn.io.notes import note

logger = logging.getLogger(__name__)

__all__ = [
    "ALIASES",
    "BandSelection",
    "BandSpec",
    "band_label",
    "canonical_band_name",
    "check_band_content",
    "match_band_names",
    "parse_band_spec",
    "select_bands",
]

BandSpec = list[int] | list[str]
"""Parsed band spec: all 1-based indexes or all names."""

ALIASES: Final[dict[str, str]] = {
    "r": "red",
    "g": "green",
    "b": "blue",
    "a": "alpha",
    "nearinfrared": "nir",
    "nearir": "nir",
    "nir1": "nir",
    "ir": "nir",
    "grey": "gray",
    "pan": "gray",
    "panchromatic": "gray",
}
"""Band name aliases, after lower-casing and removing spaces, ``-`` and ``_``."""

OVERVIEW_SIDE: Final = 256
MIN_PIXELS: Final = 4
"""Fewer pixels than this are refused as too small (a band of one pixel is constant by nature)."""
"""Longest side of the overview read by :func:`check_band_content` (GDAL serves it from overviews)."""


def canonical_band_name(name: str) -> str:
    """``name`` lower-cased, without spaces, ``-`` and ``_``, with aliases resolved."""
    key = "".join(ch for ch in name.lower() if ch not in " -_")
    return ALIASES.get(key, key)


def parse_band_spec(spec: str | Sequence[str | int] | None) -> BandSpec | None:
    """A band spec as a list of 1-based indexes or of names (``None`` stays ``None``).

    Args:
        spec: ``"1,2,3,4"``, ``"red,green,blue,nir"`` or a list of the same.

    Raises:
        ValueError: an empty spec, an index below 1, a repeated band, or indexes mixed with names.
    """
    if spec is None:
        return None
    items = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else [str(s).strip() for s in spec]
    if not items or any(not s for s in items):
        raise ValueError(f"must list bands separated by commas (1,2,3,4 or red,green,blue,nir), got {spec!r}")
    digits = [s.isdigit() for s in items]
    if any(digits) and not all(digits):
        raise ValueError(f"must be all indexes or all names, got {spec!r}")
    if all(digits):
        indexes = [int(s) for s in items]
        if min(indexes) < 1:
            raise ValueError(f"band indexes start at 1, got {spec!r}")
        if len(set(indexes)) != len(indexes):
            raise ValueError(f"names a band twice: {spec!r}")
        return indexes
    if len({canonical_band_name(s) for s in items}) != len(items):
        raise ValueError(f"names a band twice: {spec!r}")
    return items


def band_label(ds: DatasetReader, index: int) -> str:
    """How messages name source band ``index``: ``band 4 (nir, alpha)``."""
    desc = ds.descriptions[index - 1]
    tags = [t for t in (desc, ds.colorinterp[index - 1].name) if t and t != "undefined"]
    return f"band {index}" + (f" ({', '.join(tags)})" if tags else "")


def match_band_names(ds: DatasetReader, names: Sequence[str]) -> list[int] | None:
    """Source indexes of ``names`` by description, then colour interpretation; ``None`` if any is missing.

    A name that matches several bands takes the first one.
    """
    descs = [canonical_band_name(d) if d else "" for d in ds.descriptions]
    interps = [canonical_band_name(ci.name) for ci in ds.colorinterp]
    indexes: list[int] = []
    for name in names:
        key = canonical_band_name(name)
        if key in descs:
            indexes.append(descs.index(key) + 1)
        elif key in interps and key != "undefined":
            indexes.append(interps.index(key) + 1)
        else:
            return None
    return indexes if len(set(indexes)) == len(indexes) else None


@dataclass(frozen=True)
class BandSelection:
    """The source bands a model reads from one raster.

    Attributes:
        indexes: 1-based source indexes, in the model's band order.
        names: Each band's description, else its colour interpretation, else ``band<i>``.
        colorinterp: Each band's colour interpretation name.
    """

    indexes: tuple[int, ...]
    names: tuple[str, ...]
    colorinterp: tuple[str, ...]

    @classmethod
    def of(cls, ds: DatasetReader, indexes: Sequence[int]) -> BandSelection:
        """The selection of ``indexes`` (already checked to exist) in ``ds``."""
        names, interps = [], []
        for i in indexes:
            ci = ds.colorinterp[i - 1].name
            desc = ds.descriptions[i - 1]
            names.append(desc or (ci if ci != "undefined" else f"band{i}"))
            interps.append(ci)
        return cls(tuple(indexes), tuple(names), tuple(interps))


def select_bands(ds: DatasetReader, spec: BandSpec, path: str | Path | None = None) -> BandSelection:
    """Resolve a parsed band spec against ``ds``.

    Raises:
        RasterError: an index beyond the file's bands, or a name no band carries (the message
            lists the file's bands).
    """
    where = path if path is not None else ds.name
    if all(isinstance(s, int) for s in spec):
        indexes = [int(s) for s in spec]
        too_high = [i for i in indexes if i > ds.count]
        if too_high:
            raise RasterError(f"--bands asks for band {too_high[0]}; the file has {ds.count} bands", where)
        return BandSelection.of(ds, indexes)
    names = [str(s) for s in spec]
    for name in names:
        if match_band_names(ds, [name]) is None:
            have = ", ".join(band_label(ds, i) for i in range(1, ds.count + 1))
            raise RasterError(
                f"no band is named {name!r} (by description or colour interpretation); the file has "
                f"{have}; select bands by index, e.g. --bands 1,2,3,4",
                where,
            )
    matched = match_band_names(ds, names)
    if matched is None:
        raise RasterError(f"--bands {','.join(names)} names one band twice", where)
    return BandSelection.of(ds, matched)


def _mask_values(dtype: np.dtype) -> set[float]:
    values = {0.0, 255.0}
    if np.issubdtype(dtype, np.integer):
        values.add(float(np.iinfo(dtype).max))
    return values


def _band_fix(ds: DatasetReader, indexes: Sequence[int], bad: int) -> str:
    """The ``--bands`` way out, naming bands this file has: the consumed ones with ``bad`` replaced."""
    others = [
        i for i in range(1, ds.count + 1) if i not in indexes and ds.colorinterp[i - 1] != ColorInterp.alpha
    ]
    if not others:
        return (
            f"the file has no other data band to select ({ds.count} bands); give a raster whose "
            f"band {bad} holds data, or use a model trained on fewer bands"
        )
    chosen = ",".join(str(others[0] if i == bad else i) for i in indexes)
    return f"select the data bands with --bands (e.g. --bands {chosen}), which also lifts this check"


def check_band_content(ds: DatasetReader, indexes: Sequence[int], path: str | Path | None = None) -> None:
    """Refuse consumed bands that hold no data, judged on an overview of at most 256 px a side.

    A band is refused when its valid values (not nodata, not NaN) are constant, or when it is
    tagged alpha and holds only mask values (0, 255, the type's maximum). A band tagged alpha
    with other values is data and is used, with a warning.

    Raises:
        RasterError: naming the file and the band, and the way out (``--bands``).
    """
    where = path if path is not None else ds.name
    if ds.height * ds.width < MIN_PIXELS:  # one pixel is constant by nature: say what is wrong
        raise RasterError(
            f"raster is {ds.height} x {ds.width} pixels (rows x columns), too small to infer on "
            f"(at least {MIN_PIXELS} pixels); mosaic it with its neighbouring tiles first",
            where,
        )
    scale = max(1.0, max(ds.height, ds.width) / OVERVIEW_SIDE)
    shape = (max(1, math.ceil(ds.height / scale)), max(1, math.ceil(ds.width / scale)))
    overview = ds.read(list(indexes), out_shape=(len(indexes), *shape), resampling=Resampling.nearest)
    for index, band in zip(indexes, overview, strict=True):
        keep = np.ones(band.shape, bool)
        if np.issubdtype(band.dtype, np.floating):
            keep &= ~np.isnan(band)
        nodata = ds.nodatavals[index - 1]
        if nodata is not None and not math.isnan(nodata):
            keep &= band != np.asarray(nodata).astype(band.dtype)
        values = band[keep]
        alpha = ds.colorinterp[index - 1] == ColorInterp.alpha
        fix = _band_fix(ds, indexes, index)
        if values.size == 0 or values.min() == values.max():
            held = "no valid value" if values.size == 0 else f"only the value {values.flat[0].item()}"
            raise RasterError(
                f"{band_label(ds, index)} holds {held} over the raster's overview: it carries no "
                f"data{' (a transparency mask)' if alpha else ''}; {fix}",
                where,
            )
        if alpha:
            uniques = np.unique(values)
            if uniques.size <= 3 and set(uniques.astype(float).tolist()) <= _mask_values(band.dtype):
                shown = ", ".join(str(v) for v in uniques.tolist())
                raise RasterError(
                    f"{band_label(ds, index)} is tagged alpha and holds only mask values ({shown}): it "
                    f"is a transparency mask, not data; {fix}",
                    where,
                )
            note(
                where,
                f"{band_label(ds, index)} is tagged alpha but holds varying values; using it as data",
                logger,
            )
