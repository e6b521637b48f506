"""Road scenes from STAC: each item of an ItemCollection, Catalog or Collection is one scene.

An item's image is its asset named by ``image_asset``, else its one asset with role ``data``
(else its one raster data asset, :func:`satcnn.io.stac_assets.data_assets`); its label (the road
mask) is the asset named by ``label_asset``, else its one asset with role ``labels`` (or
``label``). The document is read by :func:`satcnn.io.stac_read.read_items` (a local path or an
``http(s)://`` / ``s3://`` URL; catalogs and collections are walked) and the assets' hrefs are
read in place (:mod:`satcnn.io.remote`). The scene is named by the item id.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pystac

from satcnn.errors import DataFormatError
from satcnn.io.remote import is_href
from satcnn.io.stac_assets import data_assets
from satcnn.io.stac_read import STAC_SUFFIXES, FoundItem, absolute_href, read_items

__all__ = ["LABEL_ROLES", "ScenePair", "is_stac_root", "stac_scene_pairs"]

LABEL_ROLES = ("labels", "label")


@dataclass(frozen=True)
class ScenePair:
    """An item's image and label hrefs (absolute), and how messages name the pair."""

    name: str
    image: str
    label: str
    described: str


def is_stac_root(root: str | os.PathLike[str]) -> bool:
    """Whether a DataModule ``root`` names a STAC document (a URL, a file, a ``.json`` path)
    rather than a folder of ``images/`` and ``masks/``."""
    text = str(root)
    return is_href(text) or Path(text).is_file() or Path(text).suffix.lower() in STAC_SUFFIXES


def _keys(item: pystac.Item) -> str:
    return ", ".join(item.assets) or "none"


def _named(item: pystac.Item, key: str, option: str, where: str) -> str:
    if key not in item.assets:
        raise DataFormatError(
            f"item {item.id!r} has no asset {key!r} ({option}); its assets: {_keys(item)}", where
        )
    return key


def _label_key(item: pystac.Item, label_asset: str | None, where: str) -> str:
    if label_asset:
        return _named(item, label_asset, "label_asset", where)
    found = [k for k, a in item.assets.items() if set(a.roles or []) & set(LABEL_ROLES)]
    return _one(item, found, "label", "labels", where)


def _image_key(item: pystac.Item, image_asset: str | None, label: str, where: str) -> str:
    if image_asset:
        return _named(item, image_asset, "image_asset", where)
    found = [k for k, a in item.assets.items() if k != label and "data" in (a.roles or [])]
    if not found:
        found = [k for k in data_assets(item) if k != label]
    return _one(item, found, "image", "data", where)


def _one(item: pystac.Item, found: list[str], kind: str, role: str, where: str) -> str:
    if len(found) == 1:
        return found[0]
    many = f"{len(found)} {kind} assets ({', '.join(found)})"
    problem = many if found else f"no {kind} asset (role {role!r})"
    raise DataFormatError(
        f"item {item.id!r} has {problem}; its assets: {_keys(item)}; name one with {kind}_asset", where
    )


def _pair(found: FoundItem, image_asset: str | None, label_asset: str | None) -> ScenePair:
    item = found.item
    label = _label_key(item, label_asset, found.href)
    image = _image_key(item, image_asset, label, found.href)
    if image == label:
        raise DataFormatError(f"item {item.id!r}: image and label are both asset {image!r}", found.href)
    image_href = absolute_href(item.assets[image].href, found.base)
    label_href = absolute_href(item.assets[label].href, found.base)
    described = (
        f"item {item.id!r}: image asset {image!r} ({image_href}) and label asset {label!r} ({label_href})"
    )
    return ScenePair(item.id, image_href, label_href, described)


def stac_scene_pairs(
    root: str, image_asset: str | None = None, label_asset: str | None = None
) -> list[ScenePair]:
    """One image/label pair per item of the STAC document ``root``, sorted by item id.

    Raises:
        InputFileNotFoundError: A local document does not exist.
        DataFormatError: The document cannot be read or holds no item; an item without a label
            or an image asset (naming the item and its asset keys), or two items with one id.
    """
    pairs = [_pair(found, image_asset, label_asset) for found in read_items(root)]
    names = [p.name for p in pairs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise DataFormatError(f"item ids {twice} occur more than once; scenes are named by item id", root)
    return sorted(pairs, key=lambda p: p.name)
