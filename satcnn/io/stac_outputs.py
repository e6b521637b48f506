"""One STAC Item per satcnn raster output: what ``satcnn.io.stac_collection`` writes beside the outputs.

``output_item`` describes a raster output that has a CRS:

* geometry and bbox in EPSG:4326 (the footprint, densified along its edges), ``datetime`` when
  the output was written (local inputs carry no acquisition time);
* ``proj:code`` (or ``proj:wkt2``), ``proj:shape``, ``proj:transform`` and ``proj:bbox`` of its grid;
* one asset ``data`` (roles ``data``, the COG) with ``raster:bands`` (data type, nodata, scale:
  ``prob_uint8`` stores ``p * 254``), ``file:size`` and ``file:checksum`` (a sha2-256 multihash),
  and for class maps and masks ``classification:classes`` (class names, colours from the COG's
  colour table, nodata); vector outputs of the same input (``--vector``) are further assets;
* links: ``derived_from`` the input raster (its href), ``derived_from`` the model card when the
  model is an export with one (STAC MLM, ``satcnn export``; the MLM extension's relation for
  inference results), else ``via`` the model: a shipped model's card (``pretrained:<name>``, the
  absolute path of its ``<name>.json``, titled with the URI), else the model URI; ``related``
  ``runs:/<run id>`` for the MLflow
  run; and the properties ``satcnn:model`` and ``satcnn:mlflow``.

Outputs without a CRS (``--allow-no-crs``) get no Item: a footprint would be a wrong place.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pystac
import rasterio
from pystac.extensions.classification import Classification, ClassificationExtension
from pystac.extensions.file import FileExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import DataType, RasterBand, RasterExtension
from rasterio.warp import transform as warp_transform

from satcnn.io.output_tags import OutputTags, read_output_tags
from satcnn.io.remote import is_href
from satcnn.io.road_mask import UINT8_SCALE

logger = logging.getLogger(__name__)

__all__ = ["Provenance", "file_checksum", "output_item"]

GEOTIFF = "image/tiff; application=geotiff"
GEOPACKAGE = "application/geopackage+sqlite3"
STAC_ITEM = "application/geo+json"
TITLES = {
    "prob_uint8": "road probability (p = value / 254)",
    "prob_float32": "road probability",
    "mask": "road mask (1 road, 0 background)",
    "class_map": "class map (class index per pixel)",
}
NODATA_CLASS = 255


@dataclass(frozen=True)
class Provenance:
    """What made a run's outputs, for the links and properties of their Items.

    Attributes:
        model_uri: The model as given (``runs:/...``, ``models:/...``, a path).
        model_path: The model file read.
        model_digest: SHA-256 of its weights.
        model_card: The STAC MLM card of an exported model (``<export>.json``), when there is one.
        model_href: A resolvable description of the model when its URI is none: a shipped model's
            card (``satcnn/pretrained/<name>.json``) for ``pretrained:<name>``.
        mlflow_run_id: The run's MLflow run, when tracked.
        tracking_uri: Its tracking store.
    """

    model_uri: str
    model_path: Path | None = None
    model_digest: str | None = None
    model_card: Path | None = None
    model_href: Path | None = None
    mlflow_run_id: str | None = None
    tracking_uri: str | None = None


def file_checksum(path: str | Path) -> str:
    """The ``file:checksum`` of ``path``: a sha2-256 multihash in hex (``1220`` + sha256)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "1220" + h.hexdigest()


def _footprint(ds: rasterio.io.DatasetReader, points: int = 11) -> tuple[dict[str, Any], list[float]]:
    """The grid's outline in longitude/latitude (``points`` per edge, corners for EPSG:4326) and bbox.

    The outline follows the pixel grid's edges through its transform, so a rotated grid's
    footprint is the rotated quadrilateral, not the box around it.
    """
    if ds.crs.to_epsg() == 4326:
        points = 2
    t = np.linspace(0.0, 1.0, points)[:-1]
    w, h = ds.width, ds.height
    cols = np.concatenate([w * t, np.full_like(t, w), w - w * t, np.zeros_like(t)])
    rows = np.concatenate([np.zeros_like(t), h * t, np.full_like(t, h), h - h * t])
    xs, ys = ds.transform * (cols, rows)
    lons, lats = warp_transform(ds.crs, "EPSG:4326", list(xs), list(ys))
    ring = [[round(x, 9), round(y, 9)] for x, y in zip(lons, lats, strict=True)]
    ring.append(ring[0])
    bbox = [min(lons), min(lats), max(lons), max(lats)]
    return {"type": "Polygon", "coordinates": [ring]}, bbox


def _hex(rgba: Sequence[int]) -> str:
    return "{:02X}{:02X}{:02X}".format(*rgba[:3])


def _machine_name(name: str) -> str:
    """A class name as the classification extension's ``name`` wants it (letters, digits, ``-_``)."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name) or "class"


def _classes(ds: rasterio.io.DatasetReader, tags: OutputTags) -> list[Classification]:
    names = list(tags.classes) if tags.output == "class_map" else ["background", "road"]
    try:
        table = ds.colormap(1)
    except ValueError:
        table = {}
    classes = [
        Classification.create(
            value=i,
            name=_machine_name(name),
            title=name,
            color_hint=_hex(table[i]) if i in table else None,
        )
        for i, name in enumerate(names)
    ]
    if ds.nodata is not None and int(ds.nodata) not in range(len(names)):
        classes.append(Classification.create(value=int(ds.nodata), name="nodata", nodata=True))
    return classes


def _raster_band(ds: rasterio.io.DatasetReader, tags: OutputTags) -> RasterBand:
    scale = 1.0 / UINT8_SCALE if tags.output == "prob_uint8" else None
    res = None
    if ds.crs is not None and ds.crs.is_projected and ds.crs.linear_units in ("metre", "meter"):
        res = float(abs(ds.transform.a))
    return RasterBand.create(
        data_type=DataType(ds.dtypes[0]),
        nodata=ds.nodata,
        scale=scale,
        offset=0.0 if scale is not None else None,
        spatial_resolution=res,
    )


def _model_links(item: pystac.Item, prov: Provenance) -> None:
    if prov.model_card is not None:
        item.add_link(
            pystac.Link(
                "derived_from",
                str(prov.model_card.resolve()),
                media_type=STAC_ITEM,
                title="model card (STAC MLM) of the model that made this output",
            )
        )
    elif prov.model_href is not None:
        item.add_link(
            pystac.Link(
                "via",
                str(prov.model_href.resolve()),
                media_type=pystac.MediaType.JSON,
                title=f"{prov.model_uri}: the card of the model that made this output",
            )
        )
    else:
        item.add_link(pystac.Link("via", prov.model_uri, title="the model that made this output"))
    if prov.mlflow_run_id:
        item.add_link(
            pystac.Link(
                "related",
                f"runs:/{prov.mlflow_run_id}",
                title=f"MLflow run of the inference (tracking store {prov.tracking_uri or 'default'})",
            )
        )
    item.properties["satcnn:model"] = {
        "uri": prov.model_uri,
        "path": str(prov.model_path) if prov.model_path else None,
        "digest": prov.model_digest,
        "card": str(prov.model_card) if prov.model_card else None,
    }
    if prov.mlflow_run_id:
        item.properties["satcnn:mlflow"] = {"run_id": prov.mlflow_run_id, "tracking_uri": prov.tracking_uri}


def output_item(
    path: Path, source: str | None, prov: Provenance, vectors: Sequence[Path] = ()
) -> pystac.Item | None:
    """The STAC Item of the raster output ``path``; ``None`` for a raster without a CRS.

    Args:
        path: The output COG (a satcnn output: its tags say what it is).
        source: The href of the input it was made from (``derived_from``).
        prov: The model and run that made it.
        vectors: Vector outputs of the same input, added as assets.
    """
    tags = read_output_tags(path)
    with rasterio.open(path) as ds:
        if ds.crs is None or tags is None:
            return None
        geometry, bbox = _footprint(ds)
        made = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        item = pystac.Item(path.stem, geometry, bbox, made, properties={})
        epsg = ds.crs.to_epsg()
        ProjectionExtension.ext(item, add_if_missing=True).apply(
            code=f"EPSG:{epsg}" if epsg else None,
            wkt2=None if epsg else ds.crs.to_wkt(),
            shape=[ds.height, ds.width],
            transform=list(ds.transform)[:6],
            bbox=list(ds.bounds),
        )
        asset = pystac.Asset(
            str(path.resolve()), title=TITLES[tags.output], media_type=pystac.MediaType.COG, roles=["data"]
        )
        item.add_asset("data", asset)
        RasterExtension.ext(asset, add_if_missing=True).apply([_raster_band(ds, tags)])
        if tags.output in ("class_map", "mask"):
            ClassificationExtension.ext(asset, add_if_missing=True).apply(classes=_classes(ds, tags))
    FileExtension.ext(asset, add_if_missing=True).apply(
        size=path.stat().st_size, checksum=file_checksum(path)
    )
    for i, vec in enumerate(vectors):
        vasset = pystac.Asset(str(vec.resolve()), title="vectors", media_type=GEOPACKAGE, roles=["data"])
        item.add_asset("vectors" if i == 0 else f"vectors_{i}", vasset)
        FileExtension.ext(vasset, add_if_missing=True).apply(
            size=vec.stat().st_size, checksum=file_checksum(vec)
        )
    item.common_metadata.created = made
    item.properties["satcnn:output"] = tags.output
    if tags.threshold is not None:
        item.properties["satcnn:threshold"] = tags.threshold
    if source:
        kind = GEOTIFF if Path(urlsplit(source).path).suffix.lower() in (".tif", ".tiff") else None
        href = source if is_href(source) else str(Path(source).resolve())
        item.add_link(pystac.Link("derived_from", href, media_type=kind, title="input"))
    _model_links(item, prov)
    return item
