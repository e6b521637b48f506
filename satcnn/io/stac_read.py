"""STAC documents as inputs: read an Item, an ItemCollection, a Catalog or Collection, or search an API.

A document is a local path or an ``http(s)://`` / ``s3://`` href; ``http(s)`` documents are read
with pystac's own reader, ``s3://`` ones with boto3 under GDAL's S3 variables (``AWS_S3_ENDPOINT``,
``AWS_HTTPS``, ``AWS_NO_SIGN_REQUEST``), so one environment serves the documents and the rasters
they name. Static catalogs and collections are walked (their ``child`` and ``item`` links); an
API search goes through pystac-client. Every failure is a ``DataFormatError`` naming the document
or URL.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pystac
from pystac.stac_io import DefaultStacIO

from satcnn.errors import DataFormatError, InputFileNotFoundError
from satcnn.io.remote import is_href

__all__ = [
    "STAC_SUFFIXES",
    "FoundItem",
    "StacSearch",
    "absolute_href",
    "is_stac_spec",
    "parse_bbox",
    "read_items",
    "search",
]

STAC_SUFFIXES = (".json", ".geojson")
_RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".jp2", ".img", ".nc")


@dataclass(frozen=True)
class FoundItem:
    """One STAC Item found in a document or a search.

    Attributes:
        item: The item.
        href: Where it lives: its self href, else ``<document>#<id>`` (an item of an ItemCollection).
        base: The href its relative asset hrefs are resolved against.
    """

    item: pystac.Item
    href: str
    base: str


@dataclass(frozen=True)
class StacSearch:
    """A STAC API search (``satcnn infer --stac URL --collections ... --bbox ... --datetime ...``).

    Attributes:
        url: The API's root URL.
        collections: Collection ids.
        bbox: ``(west, south, east, north)`` in degrees, or ``None``.
        datetime: An instant or an interval ``A/B`` (open ends as ``..``), or ``None``.
        query: ``query`` extension terms (``eo:cloud_cover<10``).
        filter: A CQL2 filter: CQL2-JSON (starts with ``{``) or CQL2-text.
        max_items: At most this many items (``None``: all).
    """

    url: str
    collections: tuple[str, ...] = ()
    bbox: tuple[float, float, float, float] | None = None
    datetime: str | None = None
    query: tuple[str, ...] = ()
    filter: str | None = None
    max_items: int | None = None


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    """``"W,S,E,N"`` in degrees as four floats.

    Raises:
        ValueError: Not four numbers, a latitude outside [-90, 90], or south above north.
    """
    parts = [p.strip() for p in text.split(",")]
    try:
        w, s, e, n = (float(p) for p in parts)
    except ValueError:
        raise ValueError(f"must be four numbers west,south,east,north in degrees, got {text!r}") from None
    if not (-90 <= s <= n <= 90) or not (-180 <= w <= 180 and -180 <= e <= 180):
        raise ValueError(f"must be west,south,east,north in degrees with south <= north, got {text!r}")
    return w, s, e, n


def is_stac_spec(spec: str | os.PathLike[str]) -> bool:
    """Whether an input spec names a STAC document: a ``.json`` path, a ``.geojson`` path that
    names a ``stac_version``, a ``.json``/``.geojson`` href, or an href whose last path segment has
    no raster suffix (an API's item URL)."""
    text = str(spec)
    if is_href(text):
        path = urlsplit(text).path
        if path.endswith("/"):
            return False  # a folder URL: refused as an input (remote folders are not listed)
        suffix = Path(path).suffix.lower()
        return suffix in STAC_SUFFIXES or (
            suffix not in _RASTER_SUFFIXES and "." not in path.rsplit("/", 1)[-1]
        )
    suffix = Path(text).suffix.lower()
    return suffix == ".json" or (suffix == ".geojson" and _says_stac(Path(text)))


def _says_stac(path: Path) -> bool:
    """A local ``.geojson`` file is STAC when its start names a ``stac_version``: plain GeoJSON (road
    centrelines given as truth) is not. A missing or unreadable file counts as STAC, so reading it
    names the problem."""
    try:
        with path.open("rb") as f:
            head = f.read(1 << 20)
    except OSError:
        return True
    return b'"stac_version"' in head


class _StacIO(DefaultStacIO):
    """pystac's reader, with ``s3://`` documents read through boto3 (GDAL's S3 variables honoured)."""

    def read_text_from_href(self, href: str) -> str:
        if href.startswith("s3://"):
            return _read_s3(href)
        if is_href(href) and not href.startswith(("http://", "https://")):
            raise DataFormatError("STAC documents are read from local paths, http(s):// or s3://", href)
        return super().read_text_from_href(href)


def _read_s3(href: str) -> str:
    try:
        import boto3
        from botocore import UNSIGNED
        from botocore.config import Config
    except ImportError:
        raise DataFormatError(
            "reading a STAC document from s3:// needs boto3 (pip install boto3); or give its https:// URL",
            href,
        ) from None

    bucket, _, key = href.removeprefix("s3://").partition("/")
    endpoint = os.environ.get("AWS_S3_ENDPOINT")
    kwargs: dict[str, Any] = {}
    if endpoint:
        scheme = "http" if os.environ.get("AWS_HTTPS", "YES").upper() in ("NO", "FALSE", "OFF") else "https"
        kwargs["endpoint_url"] = endpoint if "://" in endpoint else f"{scheme}://{endpoint}"
    if os.environ.get("AWS_NO_SIGN_REQUEST", "").upper() in ("YES", "TRUE", "ON"):
        kwargs["config"] = Config(signature_version=UNSIGNED, s3={"addressing_style": "path"})
    body = boto3.client("s3", **kwargs).get_object(Bucket=bucket, Key=key)["Body"].read()
    return str(body.decode("utf-8"))


def absolute_href(href: str, base: str) -> str:
    """``href`` resolved against the document ``base`` (an href or a local path)."""
    if is_href(href) or os.path.isabs(href):
        return href
    if is_href(base):
        return urljoin(base, href)
    return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(base)), href))


def _read_json(io: _StacIO, href: str) -> dict[str, Any]:
    if not is_href(href) and not Path(href).is_file():
        raise InputFileNotFoundError("STAC document does not exist", href)
    try:
        text = io.read_text(href)
    except DataFormatError:
        raise
    except Exception as err:  # urllib, boto3 and OS errors alike: the document cannot be fetched
        raise DataFormatError(f"cannot read the STAC document ({_cause(err)})", href) from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataFormatError(
            f"is not valid JSON ({err}); expected a STAC Item, ItemCollection or Catalog", href
        ) from None
    if not isinstance(doc, dict):
        raise DataFormatError("is not a STAC document (a JSON object with a 'type')", href)
    return doc


def _cause(err: BaseException) -> str:
    return str(getattr(err, "reason", None) or err).strip() or type(err).__name__


def _item(d: dict[str, Any], where: str, href: str | None) -> pystac.Item:
    try:
        return pystac.Item.from_dict(d, href=href, migrate=True, preserve_dict=False)
    except Exception as err:  # pystac raises KeyError/TypeError/STACError on a malformed item
        name = d.get("id", "?") if isinstance(d, dict) else "?"
        raise DataFormatError(f"item {name!r} is not a valid STAC Item ({_cause(err)})", where) from None


def read_items(spec: str) -> list[FoundItem]:
    """The items a STAC document holds: an Item, an ItemCollection (FeatureCollection), or every
    item of a Catalog or Collection and its children (walked).

    Raises:
        InputFileNotFoundError: A local document does not exist.
        DataFormatError: The document cannot be read, is not JSON or not a STAC Item,
            ItemCollection, Catalog or Collection, or holds no item.
    """
    io = _StacIO()
    href = spec if is_href(spec) else os.path.abspath(os.path.expanduser(spec))
    doc = _read_json(io, href)
    kind = doc.get("type")
    found: list[FoundItem] = []
    if kind == "Feature":
        item = _item(doc, href, href)
        found.append(FoundItem(item, href, href))
    elif kind == "FeatureCollection":
        for d in doc.get("features") or []:
            item = _item(d, href, None)
            self_href = item.get_self_href()
            found.append(FoundItem(item, self_href or f"{href}#{item.id}", self_href or href))
    elif kind in ("Catalog", "Collection"):
        try:
            cat = pystac.read_dict(doc, href=href, stac_io=io)
            assert isinstance(cat, pystac.Catalog)
            for item in cat.get_items(recursive=True):
                self_href = item.get_self_href() or f"{href}#{item.id}"
                found.append(FoundItem(item, self_href, self_href))
        except DataFormatError:
            raise
        except Exception as err:
            raise DataFormatError(f"cannot walk the {kind.lower()} ({_cause(err)})", href) from None
    else:
        raise DataFormatError(
            f"is a JSON document of type {kind!r}, not a STAC Item, ItemCollection (FeatureCollection), "
            "Catalog or Collection",
            href,
        )
    if not found:
        raise DataFormatError(f"STAC {kind} holds no item", href)
    return found


def search(request: StacSearch) -> list[FoundItem]:
    """The items a STAC API search returns (through pystac-client).

    Raises:
        DataFormatError: The API cannot be reached or refuses the search, or it finds no item.
    """
    from pystac_client import Client

    kwargs: dict[str, Any] = {"max_items": request.max_items}
    if request.collections:
        kwargs["collections"] = list(request.collections)
    if request.bbox is not None:
        kwargs["bbox"] = list(request.bbox)
    if request.datetime:
        kwargs["datetime"] = request.datetime
    if request.query:
        kwargs["query"] = list(request.query)
    if request.filter:
        text = request.filter.strip()
        kwargs["filter"] = json.loads(text) if text.startswith("{") else text
        kwargs["filter_lang"] = "cql2-json" if text.startswith("{") else "cql2-text"
    try:
        client = Client.open(request.url)
        items = list(client.search(**kwargs).items())
    except json.JSONDecodeError as err:
        raise DataFormatError(f"--filter is not valid CQL2-JSON ({err})", request.url) from None
    except Exception as err:  # requests, pystac-client API errors: one line naming the API
        raise DataFormatError(f"STAC API search failed ({_cause(err)})", request.url) from None
    if not items:
        raise DataFormatError(f"STAC API search found no item ({_describe(request)})", request.url)
    out = []
    for item in items:
        self_href = item.get_self_href() or f"{request.url}#{item.id}"
        out.append(FoundItem(item, self_href, self_href))
    return out


def _describe(request: StacSearch) -> str:
    parts: Sequence[tuple[str, Any]] = (
        ("collections", ",".join(request.collections)),
        ("bbox", ",".join(f"{v:g}" for v in request.bbox) if request.bbox else ""),
        ("datetime", request.datetime),
        ("query", " ".join(request.query)),
        ("filter", request.filter),
    )
    return ", ".join(f"{k} {v}" for k, v in parts if v) or "no criteria"
