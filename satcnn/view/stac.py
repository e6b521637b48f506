"""``satcnn view`` of a STAC collection of outputs (``collection.json``, ``satcnn.io.stac_collection``).

Each Item's assets are outputs; its ``derived_from`` link of an image type is the input. Items of
one input (a probability and its mask) become one tile, as a manifest entry lists them.
"""

from __future__ import annotations

from pathlib import Path

import pystac

from satcnn.errors import DataFormatError
from satcnn.io.stac_collection import COLLECTION_NAME

__all__ = ["find_collection", "stac_entries"]


def find_collection(path: Path) -> Path | None:
    """The collection ``path`` names: a ``.json`` file, or ``collection.json`` in a folder; else None."""
    if path.is_file() and path.suffix.lower() == ".json":
        return path
    candidate = path / COLLECTION_NAME
    return candidate if path.is_dir() and candidate.is_file() else None


def stac_entries(collection: Path) -> list[dict[str, object]]:
    """Manifest-like entries (``input``, ``outputs``: absolute paths) from the collection's Items.

    Raises:
        DataFormatError: The file is not a STAC Collection or Catalog, or an Item cannot be read.
    """
    try:
        root = pystac.read_file(str(collection.resolve()))
    except Exception as err:  # not JSON, or JSON that is no STAC object: pystac raises many kinds
        raise DataFormatError(f"is not a STAC collection of outputs ({err})", collection) from None
    if not isinstance(root, pystac.Catalog):
        raise DataFormatError("is a STAC Item, not a Collection: give the collection.json", collection)
    entries: dict[str, dict[str, object]] = {}
    try:
        items = list(root.get_items(recursive=True))
    except Exception as err:  # a missing or malformed item file: pystac raises many kinds
        raise DataFormatError(f"has an Item that cannot be read ({err})", collection) from None
    for item in items:
        source = next(
            (
                link.get_absolute_href()
                for link in item.links
                if link.rel == "derived_from" and (link.media_type or "").startswith("image/")
            ),
            None,
        )
        key = source or item.id
        entry = entries.setdefault(key, {"input": source, "outputs": []})
        outputs = entry["outputs"]
        assert isinstance(outputs, list)
        outputs += [a.get_absolute_href() for a in item.assets.values() if "data" in (a.roles or [])]
    return list(entries.values())
