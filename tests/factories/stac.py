"""STAC items built from the shared samples, and a real STAC API (rustac's server) on loopback."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pystac
import rasterio
from rasterio.warp import transform_bounds

from tests.factories.processes import free_port, wait_http
from tests.factories.range_server import write_cog

RGBN_NAMES = ("red", "green", "blue", "nir")
S2_KEYS = {"red": "B04", "green": "B03", "blue": "B02", "nir": "B08"}
WHEN = datetime(2020, 8, 31, tzinfo=UTC)


def split_bands(src: Path, folder: Path) -> dict[str, Path]:
    """One single-band COG per band of ``src`` (``<folder>/B04.tif`` ...), Sentinel-2 style."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    with rasterio.open(src) as ds:
        profile = {**ds.profile, "count": 1}
        for i, name in enumerate(RGBN_NAMES, 1):
            tmp = folder / f".{name}.tif"
            with rasterio.open(tmp, "w", **profile) as dst:
                dst.write(ds.read(i), 1)
            out[name] = write_cog(tmp, folder / f"{S2_KEYS[name]}.tif")
            tmp.unlink()
    return out


def _bands(names: tuple[str, ...]) -> list[dict[str, str]]:
    return [{"name": n, "common_name": n} for n in names]


def stac_item(
    item_id: str, raster: Path, assets: dict[str, tuple[str, tuple[str, ...]]], collection: str
) -> pystac.Item:
    """An item whose geometry is ``raster``'s footprint; ``assets``: key -> (href, band names)."""
    with rasterio.open(raster) as ds:
        w, s, e, n = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds)
        epsg = ds.crs.to_epsg()
    geometry = {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}
    out = pystac.Item(
        item_id, geometry, [w, s, e, n], WHEN, {"proj:code": f"EPSG:{epsg}"}, collection=collection
    )
    for key, (href, names) in assets.items():
        extra: dict[str, Any] = {"eo:bands": _bands(names)} if names else {}
        out.add_asset(
            key,
            pystac.Asset(href, media_type=pystac.MediaType.COG, roles=["data"], extra_fields=extra),
        )
    out.add_asset("thumbnail", pystac.Asset(f"{href}.png", media_type="image/png", roles=["thumbnail"]))
    return out


def write_stac(path: Path, obj: pystac.STACObject | pystac.ItemCollection | dict[str, Any]) -> Path:
    """``obj`` as JSON at ``path`` (no self links: hrefs as given)."""
    d = obj if isinstance(obj, dict) else obj.to_dict(include_self_link=False, transform_hrefs=False)
    path.write_text(json.dumps(d))
    return path


def stac_collection(collection_id: str, items: list[pystac.Item]) -> pystac.Collection:
    """A collection spanning ``items``."""
    boxes = [i.bbox for i in items if i.bbox]
    bbox = [
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    ]
    extent = pystac.Extent(pystac.SpatialExtent([bbox]), pystac.TemporalExtent([[WHEN, WHEN]]))
    return pystac.Collection(collection_id, f"{collection_id} test items", extent)


@contextmanager
def stac_api(documents: list[Path]) -> Iterator[str]:
    """``rustac serve`` (in-memory backend) loaded with ``documents``; yields its root URL."""
    exe = shutil.which("rustac") or str(Path(__import__("sys").executable).parent / "rustac")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [exe, "serve", "--addr", f"127.0.0.1:{port}", *map(str, documents)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(url, proc, timeout=60)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
