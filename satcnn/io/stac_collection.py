"""The outputs of a batch run as a static STAC catalogue: ``collection.json`` and one Item per output.

``write_output_collection`` writes, beside the outputs, ``<out>/collection.json`` (a STAC 1.1
Collection, linking the run's manifests) and ``<out>/items/<output stem>.json`` for each raster
output that has a CRS (``satcnn.io.stac_outputs.output_item``; asset hrefs relative to the Item).

Reruns: the catalogue describes the folder. The Item of an output that was not rewritten since
its Item was (``updated``) and has the same size is kept as it was (it names the run that made
the output); an Item whose output was removed or changed outside satcnn is dropped (its file
too). Every file is written atomically, the Items before the Collection that lists them. A
``collection.json`` that is not satcnn's (its id does not start with ``satcnn-``) is left alone.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pystac
from pystac.extensions.file import FileExtension

from satcnn.io.atomic import write_text_atomic
from satcnn.io.stac_outputs import Provenance, output_item

logger = logging.getLogger(__name__)

__all__ = ["COLLECTION_NAME", "ITEMS_DIR", "write_output_collection"]

COLLECTION_NAME = "collection.json"
ITEMS_DIR = "items"


def _kept(item: pystac.Item, vectors: Sequence[Path] | None = None) -> bool:
    """Whether ``item`` still describes its files: each there, same size, not written since the item.

    With ``vectors`` (the input's vector outputs now), its vector assets must also be those files.
    """
    updated = item.common_metadata.updated
    if "data" not in item.assets or updated is None:
        return False
    files = {key: Path(asset.get_absolute_href() or "") for key, asset in item.assets.items()}
    if vectors is not None and {p.resolve() for k, p in files.items() if k != "data"} != {
        v.resolve() for v in vectors
    }:
        return False
    for key, path in files.items():
        if not path.is_file():
            return False
        stat = path.stat()
        if FileExtension.ext(item.assets[key]).size != stat.st_size:
            return False
        if datetime.fromtimestamp(stat.st_mtime, UTC) > updated:
            return False
    return True


def _earlier_items(out_dir: Path) -> dict[str, pystac.Item] | None:
    """The Items the folder's collection lists now (unreadable ones are left out); None when the
    folder's ``collection.json`` is not satcnn's (it is left alone)."""
    path = out_dir / COLLECTION_NAME
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
        links, ours = data.get("links", []), str(data.get("id", "")).startswith("satcnn-")
    except (OSError, ValueError, AttributeError):
        logger.warning("%s is unreadable; it is written again", path)
        return {}
    if not ours:
        return None
    items: dict[str, pystac.Item] = {}
    for link in links if isinstance(links, list) else []:
        if not isinstance(link, dict) or link.get("rel") != "item":
            continue
        href = out_dir / str(link.get("href", ""))
        try:
            item = pystac.Item.from_file(str(href))
        except Exception as err:  # pystac raises many kinds for a bad file
            logger.debug("item %s of %s left out: %s", href, path, err)
            continue
        items[item.id] = item
    return items


def _collection(out_dir: Path, items: Sequence[pystac.Item], prov: Provenance) -> pystac.Collection:
    boxes = np.array([i.bbox for i in items if i.bbox])
    times = sorted(i.datetime for i in items if i.datetime is not None)
    extent = pystac.Extent(
        pystac.SpatialExtent([[*boxes[:, :2].min(axis=0).tolist(), *boxes[:, 2:].max(axis=0).tolist()]]),
        pystac.TemporalExtent([[times[0], times[-1]]]),
    )
    collection = pystac.Collection(
        f"satcnn-{out_dir.resolve().name}",
        f"Outputs of `satcnn infer` in {out_dir.resolve()}: one item per output COG (last model: "
        f"{prov.model_uri}).",
        extent,
        title=f"satcnn outputs: {out_dir.resolve().name}",
        license="other",
        catalog_type=pystac.CatalogType.SELF_CONTAINED,
    )
    collection.set_self_href(str((out_dir / COLLECTION_NAME).resolve()))
    manifests = sorted(out_dir.glob("manifest*.json"))
    for manifest in manifests:
        collection.add_link(
            pystac.Link(
                "related", f"./{manifest.name}", media_type="application/json", title="satcnn manifest"
            )
        )
    return collection


def write_output_collection(
    out_dir: Path, outputs: Sequence[tuple[str | None, Sequence[Path]]], prov: Provenance
) -> Path | None:
    """Write or update the folder's STAC catalogue (see the module docstring).

    Args:
        out_dir: The output folder.
        outputs: This run's inputs that have outputs: the input's href and its output files.
        prov: The model and run that made them.

    Returns:
        ``collection.json``, or ``None`` when no output has a CRS (a collection left by an
        earlier run is removed then, with its items) or the folder holds a ``collection.json``
        that is not satcnn's (left alone, with a warning).

    Raises:
        OutputError: A file cannot be written, naming it.
    """
    earlier = _earlier_items(out_dir)
    if earlier is None:
        logger.warning("%s is another STAC collection, left as it is: no catalogue of the outputs", out_dir)
        return None
    items: dict[str, pystac.Item] = {}
    no_crs: list[Path] = []
    for source, paths in outputs:
        vectors = [p for p in paths if p.suffix.lower() == ".gpkg"]
        for path in (p for p in paths if p.suffix.lower() in (".tif", ".tiff")):
            item = earlier.get(path.stem)
            if item is None or not _kept(item, vectors):
                item = output_item(path, source, prov, vectors)
            vectors = []  # the first raster's item holds the input's vectors
            if item is None:
                no_crs.append(path)
            else:
                items[item.id] = item
    items |= {k: v for k, v in earlier.items() if k not in items and _kept(v)}
    if no_crs:
        logger.info(
            "%d outputs have no CRS (e.g. %s) and are not in the STAC catalogue: a map would place them "
            "wrongly",
            len(no_crs),
            no_crs[0],
        )
    items_dir = out_dir / ITEMS_DIR
    dropped = [items_dir / f"{k}.json" for k in earlier if k not in items]
    path = out_dir / COLLECTION_NAME
    if not items:
        path.unlink(missing_ok=True)
    else:
        _write(out_dir, [items[k] for k in sorted(items)], prov)
    for stale in dropped:
        stale.unlink(missing_ok=True)
    return path if items else None


def _write(out_dir: Path, items: Sequence[pystac.Item], prov: Provenance) -> None:
    now = datetime.now(UTC)
    collection = _collection(out_dir, items, prov)
    for item in items:
        for rel in ("root", "parent", "collection", "self"):
            item.remove_links(rel)
        collection.add_item(item)
        item.set_self_href(str((out_dir / ITEMS_DIR / f"{item.id}.json").resolve()))
        item.make_asset_hrefs_relative()
        if item.common_metadata.updated is None:
            item.common_metadata.updated = now
    for item in items:
        d = item.to_dict(include_self_link=False, transform_hrefs=True)
        write_text_atomic(out_dir / ITEMS_DIR / f"{item.id}.json", json.dumps(d, indent=2) + "\n")
    d = collection.to_dict(include_self_link=False, transform_hrefs=True)
    write_text_atomic(out_dir / COLLECTION_NAME, json.dumps(d, indent=2) + "\n")
