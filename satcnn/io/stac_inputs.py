"""STAC inputs: items of STAC documents and API searches as the pipeline's input paths.

``satcnn infer --input`` takes a STAC Item, an ItemCollection (a saved search), or a static
Catalog or Collection (walked), as a local path or an href (:mod:`satcnn.io.stac_read`); ``--stac
URL`` with ``--collections``/``--bbox``/``--datetime``/``--query``/``--filter``/``--max-items`` searches
a STAC API. Each item becomes a :class:`StacSource`: a path named ``<item id>.tif`` (so outputs
are named after the item), whose ``str`` is the item's href (messages and the manifest name it),
and which carries the plan of the assets and bands to read (:mod:`satcnn.io.stac_assets`), chosen
by band meaning when the inputs are resolved. ``satcnn.io.raster`` opens it (:mod:`satcnn.io.stac_vrt`):
the one asset as it is, or a virtual stack of the assets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PosixPath
from typing import Any

from satcnn.errors import ConfigError
from satcnn.io.remote import Href
from satcnn.io.stac_assets import StackPlan, plan_stack
from satcnn.io.stac_read import FoundItem, StacSearch, absolute_href, is_stac_spec, read_items, search

__all__ = ["StacRequest", "StacSearch", "StacSource", "is_stac_spec", "resolve_stac", "source_item"]


@dataclass(frozen=True)
class StacRequest:
    """What a run asks of STAC items.

    Attributes:
        bands: The band names to read, in the model's order (``--bands`` names, else the
            model's bands); ``None``: one asset read as it is (``--bands`` given as indexes).
        assets: ``--asset`` names: only these assets are considered.
        resample_to: ``--resample-to``: the asset whose grid every band is resampled to.
        search: A STAC API search whose items are inputs too, or ``None``.
    """

    bands: tuple[str, ...] | None
    assets: tuple[str, ...] = ()
    resample_to: str | None = None
    search: StacSearch | None = None


class StacSource(Href):
    """A STAC item as an input path: named ``<item id>.tif``, ``str`` is the item's href.

    ``plan`` says which assets and bands are read (``satcnn.io.stac_vrt.open_stack`` opens it).
    """

    item_id: str
    plan: StackPlan

    def __new__(cls, href: str, item_id: str, plan: StackPlan) -> StacSource:
        name = item_id.replace("/", "_") + ".tif"
        self = PosixPath.__new__(cls, "/", "stac:", name)
        self.href, self.item_id, self.plan = href, item_id, plan
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (StacSource, (self.href, self.item_id, self.plan))

    def __repr__(self) -> str:
        return f"StacSource({self.href!r}, {self.item_id!r})"

    def __hash__(self) -> int:
        return hash(self.href)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StacSource) and other.href == self.href


def source_item(path: Path) -> str | None:
    """The STAC item href an input path was read from, or ``None`` for a file or a raster href."""
    return path.href if isinstance(path, StacSource) else None


def _source(found: FoundItem, request: StacRequest) -> StacSource:
    item = found.item
    hrefs = {key: absolute_href(asset.href, found.base) for key, asset in item.assets.items()}
    plan: StackPlan = plan_stack(
        item,
        found.href,
        request.bands,
        hrefs=hrefs,
        assets=request.assets,
        resample_to=request.resample_to,
    )
    return StacSource(found.href, item.id, plan)


def resolve_stac(specs: Sequence[str | Path], request: StacRequest | None) -> list[Path]:
    """The items of STAC documents ``specs`` and of ``request.search``, as :class:`StacSource` paths.

    Raises:
        ConfigError: STAC inputs without a request (a command that does not read STAC items).
        InputFileNotFoundError, DataFormatError: A document or search that cannot be read or holds
            no item, or an item without the assets the request needs (naming the item).
    """
    if request is None:
        where = str(specs[0]) if specs else "--stac"
        raise ConfigError("STAC inputs are read by `satcnn infer` only; give raster files here", where)
    found: list[FoundItem] = []
    for spec in specs:
        found += read_items(str(spec))
    if request.search is not None:
        found += search(request.search)
    return [_source(f, request) for f in found]
