"""What ``satcnn view`` shows: the tiles of an ``infer`` run, found through its manifest.

A folder is an ``infer`` output folder when it holds ``manifest.json`` (or the shards'
``manifest.rank<r>.json``); a pipeline output folder holds one in a stage folder below it
(``<out>/infer``). Each manifest entry names an input and its outputs; what an output is comes
from its tags (``satcnn.io.output_tags``), never from its file name. GeoPackages beside them are
the vectors (``--vector``). A STAC collection of outputs (``collection.json``, or a folder
holding one and no manifest) lists them through its Items instead (``satcnn.view.stac``).
Every raster shown must have a CRS: an output without one (SAT-6 patches run with
``--allow-no-crs``) would land at a wrong place, so it is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import rasterio
from rasterio.errors import RasterioError
from rasterio.warp import transform_bounds

from satcnn.errors import ConfigError, DataFormatError
from satcnn.io.output_tags import OutputTags, read_output_tags
from satcnn.view.stac import find_collection, stac_entries

__all__ = ["Catalog", "RasterLayer", "ViewTile", "find_manifests", "load_catalog"]

VECTOR_SUFFIXES = (".gpkg",)


@dataclass(frozen=True)
class RasterLayer:
    """One raster of a tile: an input (``tags`` None) or a satcnn output."""

    path: Path
    tags: OutputTags | None
    count: int


@dataclass
class ViewTile:
    """One input and its outputs, with its bounds in longitude/latitude (west, south, east, north)."""

    name: str
    bounds: tuple[float, float, float, float]
    input: RasterLayer | None = None
    outputs: list[RasterLayer] = field(default_factory=list)
    vectors: list[Path] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)
    truth: Path | None = None


@dataclass
class Catalog:
    """The tiles of the folder ``root``, as listed by its ``manifests``."""

    root: Path
    manifests: list[Path]
    tiles: list[ViewTile]


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
        if ds.crs is None:
            raise DataFormatError(
                "has no CRS, so it cannot be placed on a map (outputs of --allow-no-crs, such as SAT-6 "
                "patches, are not shown by `satcnn view`)",
                path,
            )
        return RasterLayer(path, tags, ds.count)


def _bounds(path: Path) -> tuple[float, float, float, float]:
    with rasterio.open(path) as ds:
        w, s, e, n = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds, densify_pts=21)
    return (w, s, e, n)


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
    return ViewTile(name, _bounds(layer.path if layer else rasters[0].path), layer, rasters, vectors)


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
        DataFormatError: A manifest or collection that is not one, an output without a CRS or
            unreadable.
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
    return Catalog(path, manifests, tiles)
