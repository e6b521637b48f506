"""``vectorize_classes``: a class-map raster in, land-cover polygons carrying class names out.

Each block is polygonised on its own with ``rasterio.features.shapes`` (4-connected regions) in
pixel coordinates, which are exact integers, so polygons cut by a block seam meet edge to edge.
Polygons that reach an inner seam are dissolved per class at the end (``shapely.union_all``) and
split into their connected parts; the rest are final when their block is done. The result is the
same set of polygons as polygonising the whole raster at once.

Optional steps: ``simplify_m`` simplifies the polygons as a coverage (``shapely.coverage_simplify``:
shared edges stay shared, no gaps or overlaps appear), and ``min_area_m2`` drops smaller polygons.

Class names come from ``classes``, else from the raster's ``CLASS_NAMES`` tag (written by
``satcnn infer`` for classifiers), else the class value as text. Nodata pixels get no polygon.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from affine import Affine
from rasterio.features import shapes
from tqdm.auto import tqdm

from satcnn.checks import require_at_least
from satcnn.errors import ConfigError, RasterError
from satcnn.io.output_tags import class_names, refuse_other_kind
from satcnn.io.raster import gdal_cache_env, open_raster
from satcnn.vector.blocks import iter_blocks
from satcnn.vector.graph import Metric
from satcnn.vector.layers import layer_paths, write_layers

__all__ = ["ClassesReport", "class_polygons", "vectorize_classes"]

log = logging.getLogger(__name__)

_INT_DTYPES = ("uint8", "uint16", "int16", "int32", "uint32", "int8")


@dataclass
class ClassesReport:
    """What :func:`vectorize_classes` did."""

    files: list[Path]
    polygons: int
    area_m2: dict[str, float]
    seconds: float


def _pixel_polygons(
    data: np.ndarray, valid: np.ndarray | None, row_off: int, col_off: int
) -> list[tuple[shapely.Polygon, int]]:
    """Polygons of 4-connected equal-value regions, in global pixel coordinates (x = col, y = row)."""
    offset = Affine.translation(col_off, row_off)
    return [
        (shapely.geometry.shape(geom), int(value))
        for geom, value in shapes(data, mask=valid, connectivity=4, transform=offset)
    ]


def class_polygons(src: str | Path, *, block: int = 2048, progress: bool = False) -> gpd.GeoDataFrame:
    """Polygonise a class map block by block; geometries in pixel coordinates, column ``class_id``.

    Raises:
        InputFileNotFoundError: ``src`` does not exist.
        RasterError: not a single-band integer raster with a CRS.
        DataFormatError: a satcnn road output (probability or mask), by its tags.
    """
    info = open_raster(src, require_crs=True)
    refuse_other_kind(info.path, ("class_map",), "satcnn vectorize classes", "use `satcnn vectorize roads`")
    if info.count != 1 or info.dtype not in _INT_DTYPES:
        raise RasterError(
            f"expected a single-band integer class map, got {info.count} band(s) of {info.dtype}", info.path
        )
    final: list[tuple[shapely.Polygon, int]] = []
    seams: dict[int, list[shapely.Polygon]] = defaultdict(list)
    with gdal_cache_env(16), rasterio.open(info.path) as ds:
        for b in tqdm(
            list(iter_blocks(info.height, info.width, block, 2)), disable=not progress, leave=False
        ):
            data = ds.read(1, window=b.core)
            valid = None if info.nodata is None else data != np.asarray(info.nodata).astype(data.dtype)
            r0, c0 = int(b.core.row_off), int(b.core.col_off)
            r1, c1 = r0 + int(b.core.height), c0 + int(b.core.width)
            for poly, value in _pixel_polygons(data, valid, r0, c0):
                x0, y0, x1, y1 = poly.bounds
                cut = (x0 == c0 > 0) or (y0 == r0 > 0) or (x1 == c1 < info.width) or (y1 == r1 < info.height)
                if cut:
                    seams[value].append(poly)
                else:
                    final.append((poly, value))
    for value, polys in seams.items():
        final.extend((part, value) for part in shapely.get_parts(shapely.union_all(polys)))
    geoms = np.array([shapely.normalize(p) for p, _ in final], dtype=object)
    values = np.array([v for _, v in final], dtype=np.int64)
    bounds = shapely.bounds(geoms).reshape(-1, 4)
    order = np.lexsort((bounds[:, 1], bounds[:, 0], values))  # deterministic: by class, then position
    return gpd.GeoDataFrame({"class_id": values[order]}, geometry=list(geoms[order]))


def vectorize_classes(
    src: str | Path,
    out: str | Path,
    *,
    classes: Sequence[str] | None = None,
    block: int = 2048,
    simplify_m: float = 0.0,
    min_area_m2: float = 0.0,
    progress: bool = False,
) -> ClassesReport:
    """Write the land-cover polygons of class map ``src`` to ``out`` (layer ``classes``).

    Args:
        src: Single-band integer class map (e.g. ``satcnn infer`` on a classifier).
        out: ``*.gpkg`` or ``*.parquet``.
        classes: Class names by value; default the ``CLASS_NAMES`` tag, else the values.
        block: Block side in pixels.
        simplify_m: Coverage simplification tolerance in metres (0: none).
        min_area_m2: Drop polygons smaller than this (0: keep all).
        progress: Show a progress bar.

    Returns:
        Files written, polygon count and area per class.

    Raises:
        InputFileNotFoundError, RasterError, ConfigError: bad input or settings, before any output.
    """
    layer_paths(out, ["classes"])
    require_at_least("simplify_m", simplify_m, 0)
    require_at_least("min_area_m2", min_area_m2, 0)
    t0 = time.perf_counter()
    info = open_raster(src, require_crs=True)
    with rasterio.open(info.path) as ds:
        names = list(classes) if classes is not None else class_names(ds)
    gdf = class_polygons(src, block=block, progress=progress)
    metric = Metric.from_raster(info.transform, info.crs, info.height, info.width)
    if simplify_m > 0 and len(gdf):
        gdf = gdf.set_geometry(shapely.coverage_simplify(gdf.geometry.values, simplify_m / metric.pixel_size))
    area = shapely.area(gdf.geometry.values) * metric.pixel_size**2
    keep = area >= min_area_m2
    gdf, area = gdf[keep].reset_index(drop=True), area[keep]
    t = info.transform
    geoms = shapely.transform(
        gdf.geometry.values,
        lambda xy: np.column_stack(
            [t.a * xy[:, 0] + t.b * xy[:, 1] + t.c, t.d * xy[:, 0] + t.e * xy[:, 1] + t.f]
        ),
    )
    ids = gdf["class_id"].to_numpy()
    unknown = sorted({int(i) for i in ids if names is not None and not 0 <= i < len(names)})
    if unknown and names is not None:
        raise ConfigError(
            f"class values {unknown} have no name in the {len(names)} class names given", info.path
        )
    out_gdf = gpd.GeoDataFrame(
        {
            "class_id": ids,
            "class_name": [names[int(i)] if names is not None else str(int(i)) for i in ids],
            "area_m2": area,
        },
        geometry=gpd.GeoSeries(geoms, crs=info.crs),
    )
    files = write_layers(out, {"classes": out_gdf})
    per_class = out_gdf.groupby("class_name")["area_m2"].sum().to_dict()
    return ClassesReport(
        files, len(out_gdf), {str(k): float(v) for k, v in per_class.items()}, time.perf_counter() - t0
    )
