"""Which assets of a STAC Item feed a model: bands chosen by meaning, not by position.

An asset's bands are named by its ``bands`` (STAC 1.1: ``eo:common_name``, else ``name``) or
``eo:bands`` (STAC 1.0: ``common_name``, else ``name``) list; a single-band asset without either is
named by its key when the key is a band name (``red``, ``nir``). Names compare as
``satcnn.io.bands.canonical_band_name`` does (``nir`` = ``near-infrared``, aliases).

For the model's band names, in order, :func:`plan_stack` takes one data asset that carries them
all (a NAIP-style multi-band asset), else one asset per band (Sentinel-2 / Landsat style), else
fails naming the band no asset carries and the assets there are. ``--asset`` restricts the choice
to the named assets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pystac

from satcnn.errors import DataFormatError
from satcnn.io.bands import canonical_band_name

__all__ = ["COMMON_NAMES", "BandSource", "StackPlan", "asset_band_names", "data_assets", "plan_stack"]

_RASTER_TYPES = ("image/tiff", "image/vnd.stac.geotiff", "image/jp2", "application/x-hdf")
_RASTER_SUFFIXES = (".tif", ".tiff", ".jp2", ".vrt", ".img")


@dataclass(frozen=True)
class BandSource:
    """One model band: ``band`` (1-based) of asset ``asset`` at ``href``, called ``name``."""

    asset: str
    href: str
    band: int
    name: str


@dataclass(frozen=True)
class StackPlan:
    """How one item is read: its bands in the model's order, and the grid they share.

    Attributes:
        sources: One per model band, in order.
        asset_count: Band count of each asset used (``0``: unknown until the file is opened).
        resample_to: ``(asset, href)`` whose grid every band is resampled to, or ``None`` (the
            assets must share one grid).
    """

    sources: tuple[BandSource, ...]
    asset_count: tuple[tuple[str, int], ...] = ()
    resample_to: tuple[str, str] | None = None

    @property
    def assets(self) -> tuple[str, ...]:
        """The assets used, in order of first use."""
        return tuple(dict.fromkeys(s.asset for s in self.sources))

    @property
    def as_is(self) -> bool:
        """Whether the one asset is read as it is: its bands are the model's, in order, and no more."""
        if len(self.assets) != 1 or self.resample_to is not None:
            return False
        count = dict(self.asset_count).get(self.assets[0], 0)
        return [s.band for s in self.sources] == list(range(1, len(self.sources) + 1)) and count in (
            0,
            len(self.sources),
        )


def _band_list(fields: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    for key in ("bands", "eo:bands"):
        value = fields.get(key)
        if isinstance(value, list) and value and all(isinstance(b, dict) for b in value):
            return value
    return None


def asset_band_names(key: str, asset: pystac.Asset) -> list[str] | None:
    """Canonical band names of ``asset`` (``""`` for a band without one); ``None`` if unknown."""
    bands = _band_list(asset.extra_fields)
    if bands is None:
        return [canonical_band_name(key)] if _is_band_key(key) else None
    names = []
    for b in bands:
        name = b.get("eo:common_name") or b.get("common_name") or b.get("name") or ""
        names.append(canonical_band_name(str(name)) if name else "")
    return names


COMMON_NAMES = [
    "coastal",
    "blue",
    "green",
    "red",
    "yellow",
    "pan",
    "rededge",
    "nir",
    "nir08",
    "nir09",
    "cirrus",
    "swir16",
    "swir22",
    "lwir",
    "lwir11",
    "lwir12",
]
"""The STAC ``eo`` common band names: an asset key that is one names its single band."""

_KNOWN = {canonical_band_name(n) for n in COMMON_NAMES}


def _is_band_key(key: str) -> bool:
    return canonical_band_name(key) in _KNOWN


def data_assets(item: pystac.Item) -> dict[str, pystac.Asset]:
    """The item's raster data assets: role ``data`` (or no role), a raster media type or suffix."""
    out = {}
    for key, asset in item.assets.items():
        roles = asset.roles or []
        if roles and "data" not in roles:
            continue
        media = (asset.media_type or "").split(";")[0].strip().lower()
        suffix = PurePosixPath(urlsplit(asset.href).path).suffix.lower()
        if media in _RASTER_TYPES or (not media and suffix in _RASTER_SUFFIXES):
            out[key] = asset
    return out


def _described(assets: Mapping[str, pystac.Asset]) -> str:
    parts = []
    for key, asset in assets.items():
        names = asset_band_names(key, asset)
        parts.append(f"{key} ({','.join(n or '?' for n in names)})" if names else f"{key} (bands unnamed)")
    return "; ".join(parts) or "none"


def plan_stack(
    item: pystac.Item,
    where: str,
    bands: Sequence[str] | None,
    *,
    hrefs: Mapping[str, str],
    assets: Sequence[str] = (),
    resample_to: str | None = None,
) -> StackPlan:
    """The assets and bands of ``item`` that feed a model reading ``bands`` (names, in order).

    Args:
        item: The item.
        where: How messages name it (its href).
        bands: The model's band names in order; ``None``: one asset read as it is (``--bands``
            given as indexes then applies to it), which must be named by ``assets`` unless the
            item has one data asset.
        hrefs: Each asset's absolute href.
        assets: ``--asset`` names: only these assets are considered.
        resample_to: ``--resample-to``: the asset whose grid the bands are resampled to.

    Raises:
        DataFormatError: An asset named that the item lacks, no asset carrying a band, or a
            choice left open (naming the item, the band and the assets there are).
    """
    for name in (*assets, *([resample_to] if resample_to else [])):
        if name not in item.assets:
            raise DataFormatError(
                f"has no asset {name!r}; its assets: {', '.join(item.assets) or 'none'}", where
            )
    pool = {k: item.assets[k] for k in assets} if assets else data_assets(item)
    if not pool:
        raise DataFormatError(
            f"has no raster data asset (role 'data', a GeoTIFF/JP2 media type); its assets: "
            f"{', '.join(item.assets) or 'none'}; name one with --asset",
            where,
        )
    named = {k: asset_band_names(k, a) for k, a in pool.items()}
    counts = tuple((k, len(v) if v else 0) for k, v in named.items())
    grid = (resample_to, hrefs[resample_to]) if resample_to else None
    if bands is None:
        if len(pool) != 1:
            raise DataFormatError(
                f"--bands by index needs one asset; the item has {len(pool)} ({', '.join(pool)}); "
                "name one with --asset, or give --bands as names (red,green,blue,nir)",
                where,
            )
        [(key, names)] = named.items()
        n = len(names) if names else 1
        sources = tuple(BandSource(key, hrefs[key], i, f"band{i}") for i in range(1, n + 1))
        return StackPlan(sources, ((key, 0),), grid)  # count unknown: read as it is
    wanted = [canonical_band_name(b) for b in bands]
    for key, names in named.items():  # one asset carrying every band: read it whole
        if names and all(w in names for w in wanted):
            sources = tuple(
                BandSource(key, hrefs[key], names.index(w) + 1, b) for w, b in zip(wanted, bands, strict=True)
            )
            return StackPlan(sources, counts, grid)
    if assets and len(assets) == 1 and named[assets[0]] is None:  # one named asset, bands unnamed: as it is
        key = assets[0]
        sources = tuple(BandSource(key, hrefs[key], i + 1, b) for i, b in enumerate(bands))
        return StackPlan(sources, ((key, 0),), grid)
    chosen = []
    for w, b in zip(wanted, bands, strict=True):
        owners = sorted((len(names), k) for k, names in named.items() if names and w in names)
        if not owners:
            raise DataFormatError(
                f"no asset has a band {b!r} (by eo:bands/bands common name or asset key); its data "
                f"assets: {_described(pool)}; name assets with --asset, or select bands with --bands",
                where,
            )
        key = owners[0][1]  # the asset with the fewest bands: a per-band asset before a composite
        names = named[key]
        assert names is not None
        chosen.append(BandSource(key, hrefs[key], names.index(w) + 1, b))
    return StackPlan(tuple(chosen), counts, grid)
