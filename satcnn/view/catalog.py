"""What ``satcnn view`` shows: the tiles of an ``infer`` run, found through its manifest.

A folder is an ``infer`` output folder when it holds ``manifest.json`` (or the shards'
``manifest.rank<r>.json``); a pipeline output folder holds one in a stage folder below it
(``<out>/infer``). Each manifest entry names an input and its outputs; what an output is comes
from its tags (``satcnn.io.output_tags``), never from its file name. GeoPackages beside them are
the vectors (``--vector``). A STAC collection of outputs (``collection.json``, or a folder
holding one and no manifest) lists them through its Items instead (``satcnn.view.stac``).

A folder whose rasters all have a CRS is shown on a map, in longitude/latitude. A folder whose
rasters all lack one (``satcnn infer --allow-no-crs``: Massachusetts Roads tiles, SAT-6 patches)
is shown on a pixel grid instead (``Catalog.pixel``): each tile in its own pixel frame, the tiles
side by side from left to right with a gap, never at a place on Earth. A folder that mixes both is
refused: one of the two would land at a wrong place.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.warp import transform_bounds

from satcnn.errors import ConfigError, DataFormatError, SatcnnError
from satcnn.flags import satcnn_command
from satcnn.io.output_tags import OutputTags, read_output_tags
from satcnn.view.stac import find_collection, stac_entries

log = logging.getLogger(__name__)

__all__ = ["Catalog", "RasterLayer", "ViewTile", "find_manifests", "load_catalog", "view_command"]

VECTOR_SUFFIXES = (".gpkg",)
PIXEL_GAP = 32.0
"""On a pixel grid: the columns left empty between two tiles."""


@dataclass(frozen=True)
class RasterLayer:
    """One raster of a tile: an input (``tags`` None) or a satcnn output."""

    path: Path
    tags: OutputTags | None
    count: int
    georeferenced: bool = True
    size: tuple[int, int] = (0, 0)  # width, height in pixels


@dataclass
class ViewTile:
    """One input and its outputs, with its bounds (west, south, east, north).

    The bounds are longitude/latitude, or on a pixel grid the page's frame: x is the column plus
    ``offset``, y minus the row.
    """

    name: str
    bounds: tuple[float, float, float, float]
    input: RasterLayer | None = None
    outputs: list[RasterLayer] = field(default_factory=list)
    vectors: list[Path] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)
    truth: Path | None = None
    offset: float = 0.0  # on a pixel grid: the column where the tile starts in the page's frame


@dataclass
class Catalog:
    """The tiles of the folder ``root``, as listed by its ``manifests``; ``pixel``: no CRS anywhere."""

    root: Path
    manifests: list[Path]
    tiles: list[ViewTile]
    pixel: bool = False


def find_manifests(path: Path) -> list[Path]:
    """The manifests of an ``infer`` folder, or of the stage folders of a pipeline folder.

    Raises:
        ConfigError: ``path`` is not a folder, or no manifest is there or one level below.
    """
    if not path.is_dir():
        raise ConfigError(
            "not a folder: give a `satcnn infer` output folder, a pipeline output folder or the "
            "outputs' collection.json",
            path,
        )
    found = sorted(path.glob("manifest*.json")) or sorted(path.glob("*/manifest*.json"))
    if not found:
        raise ConfigError(
            "no satcnn outputs here (no manifest.json or collection.json in it, no manifest.json in a "
            "folder below it): give the --output folder of `satcnn infer` or the output folder of "
            "`satcnn pipeline run`",
            path,
        )
    return found


def _locate(raw: str, manifest: Path) -> Path | None:
    """A path as written in a manifest: as is (absolute or from here), else beside the manifest."""
    p = Path(raw)
    for candidate in (p, manifest.parent / p.name):
        if candidate.exists():
            return candidate
    return None


def _raster(path: Path, tags: OutputTags | None) -> RasterLayer:
    with rasterio.open(path) as ds:
        return RasterLayer(path, tags, ds.count, ds.crs is not None, (ds.width, ds.height))


def _bounds(layer: RasterLayer) -> tuple[float, float, float, float]:
    if not layer.georeferenced:
        return (0.0, -float(layer.size[1]), float(layer.size[0]), 0.0)
    with rasterio.open(layer.path) as ds:
        w, s, e, n = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds, densify_pts=21)
    return (w, s, e, n)


def _place(tiles: list[ViewTile]) -> bool:
    """Whether the tiles go on a pixel grid (then lay them side by side); refuse a mix.

    Raises:
        DataFormatError: Some rasters have a CRS and others do not.
    """
    rasters = [r for t in tiles for r in ([t.input] if t.input else []) + t.outputs]
    with_crs = next((r for r in rasters if r.georeferenced), None)
    without = next((r for r in rasters if not r.georeferenced), None)
    if without is None:
        return False
    if with_crs is not None:
        raise DataFormatError(
            f"has no CRS but {with_crs.path} has one: a folder mixing both cannot be shown on one map "
            "(view the outputs of --allow-no-crs in a folder of their own)",
            without.path,
        )
    x = 0.0
    for tile in tiles:
        w, s, e, n = tile.bounds
        tile.offset, tile.bounds = x, (x + w, s, x + e, n)
        x += e + PIXEL_GAP
    return True


def _tile(entry: dict[str, object], manifest: Path, prefix: str) -> ViewTile | None:
    outputs = [p for raw in entry.get("outputs") or [] if (p := _locate(str(raw), manifest))]  # type: ignore[attr-defined]
    rasters: list[RasterLayer] = []
    vectors: list[Path] = []
    for p in outputs:
        if p.suffix.lower() in VECTOR_SUFFIXES:
            vectors.append(p)
            continue
        try:
            tags = read_output_tags(p)
        except RasterioError as err:
            raise DataFormatError(f"cannot be read ({err})", p) from None
        if tags is not None:
            rasters.append(_raster(p, tags))
    if not rasters:
        return None
    src = _locate(str(entry.get("input", "")), manifest) if entry.get("input") else None
    layer = None
    if src is not None:
        try:
            layer = _raster(src, None)
        except (RasterioError, DataFormatError):
            layer = None  # the outputs still show; the input's problem is not the viewer's
    name = prefix + Path(str(entry.get("input") or rasters[0].path)).stem
    return ViewTile(name, _bounds(layer or rasters[0]), layer, rasters, vectors)


def _attach_scores(root: Path, tiles: list[ViewTile]) -> None:
    """Per-tile scores and truth masks from ``satcnn evaluate``'s ``metrics.json`` (here or one below)."""
    by_output = {o.path.resolve(): t for t in tiles for o in t.outputs}
    for metrics in sorted(root.glob("metrics.json")) + sorted(root.glob("*/metrics.json")):
        try:
            rows = json.loads(metrics.read_text()).get("per_tile") or []
        except (json.JSONDecodeError, AttributeError, UnicodeDecodeError):
            continue  # not an evaluation's: the viewer shows the outputs without scores
        for row in rows if isinstance(rows, list) else []:
            pred = row.get("prediction") if isinstance(row, dict) else None
            tile = by_output.get(Path(str(pred)).resolve()) if pred else None
            if tile is None:
                continue
            tile.scores |= {k: float(v) for k, v in row.items() if isinstance(v, int | float)}
            truth = Path(str(row.get("truth", "")))
            if row.get("truth") and truth.suffix.lower() in (".tif", ".tiff") and truth.exists():
                tile.truth = truth


def _manifest_entries(manifest: Path) -> object:
    try:
        return json.loads(manifest.read_text())["outputs"]
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError):
        raise DataFormatError("is not a satcnn manifest (a JSON object with 'outputs')", manifest) from None


def load_catalog(path: Path) -> Catalog:
    """Every tile with at least one satcnn raster output under ``path`` (see the module docstring).

    Raises:
        ConfigError: No manifest or collection, or ones that list no output found on disk.
        DataFormatError: A manifest or collection that is not one, an unreadable output, or
            rasters with a CRS and rasters without one in the same folder.
    """
    collection = find_collection(path)
    listed: dict[Path, object]
    if collection is not None and (path.is_file() or not list(path.glob("manifest*.json"))):
        manifests = [collection]
        listed = {collection: stac_entries(collection)}
    else:
        manifests = find_manifests(path)
        listed = {m: _manifest_entries(m) for m in manifests}
    tiles: list[ViewTile] = []
    runs = {m.parent for m in manifests}
    for manifest, entries in listed.items():
        prefix = f"{manifest.parent.name}/" if len(runs) > 1 else ""
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and (tile := _tile(entry, manifest, prefix)) is not None:
                tiles.append(tile)
    _attach_scores(path if path.is_dir() else path.parent, tiles)
    if not tiles:
        raise ConfigError(
            f"{', '.join(str(m) for m in manifests)} list no satcnn output that exists: rerun `satcnn infer`",
            path,
        )
    return Catalog(path, manifests, tiles, _place(tiles))


CHECKED_OUTPUTS = 500
"""Most outputs whose folder ``view_command`` checks (it opens each: about 0.8 s per 300)."""


def view_command(path: Path) -> str | None:
    """The ``satcnn view`` command that maps ``path`` (``satcnn_command``), or ``None`` when ``view``
    would refuse it (:func:`load_catalog`: no outputs, or outputs with and without a CRS mixed).

    A folder whose manifests list more than ``CHECKED_OUTPUTS`` outputs is named unchecked: the
    check opens every output, which would add half a minute to a 10,000-tile run's end; ``view``
    itself still says why it refuses one.
    """
    try:
        listed = [_manifest_entries(m) for m in find_manifests(path)]
        if sum(len(e) for e in listed if isinstance(e, list)) > CHECKED_OUTPUTS:
            return satcnn_command("view", path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)  # a pixel grid is a map too
            load_catalog(path)
    except (SatcnnError, RasterioError, OSError) as err:
        log.debug("no map of %s: %s", path, err)
        return None
    return satcnn_command("view", path)
