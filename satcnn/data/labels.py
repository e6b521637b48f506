"""Road masks from vector centrelines (GeoJSON, GeoPackage, ...) on a raster's grid.

Centrelines are reprojected to the raster's CRS and buffered by half the road width in metres.
When the raster CRS is geographic (degrees, e.g. EPSG:4326) the buffer is computed in a local UTM
CRS (``GeoDataFrame.estimate_utm_crs``) and the polygons are reprojected back, so the width is
right in metres at any latitude.

Centrelines that do not touch the raster are not an error: the mask is then all zeros and a
``UserWarning`` says so (tiles of a large area often hold no road). Everything else that makes
the labels unusable (missing file, no CRS, no line geometry) raises a :mod:`satcnn.errors` class.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from rasterio.features import rasterize

from satcnn.errors import DataFormatError, RasterError, require_file
from satcnn.io.atomic import atomic_output

__all__ = ["rasterize_centerlines"]

log = logging.getLogger(__name__)

_LINE_TYPES = {"LineString", "MultiLineString"}


def _read_vectors(vectors: str | Path | gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, str]:
    if isinstance(vectors, gpd.GeoDataFrame):
        return vectors, "GeoDataFrame"
    path = require_file(vectors, "centreline file")
    try:
        return gpd.read_file(path), str(path)
    except Exception as exc:  # pyogrio raises its own DataSourceError family
        raise DataFormatError(f"cannot read centrelines: {exc}", path) from exc


def _lines(gdf: gpd.GeoDataFrame, name: str) -> gpd.GeoSeries:
    """Validated, non-empty line geometries of ``gdf``."""
    if gdf.crs is None:
        raise DataFormatError(
            "centrelines have no CRS; set one (e.g. gdf.set_crs('EPSG:4326')) or add it to the file", name
        )
    geoms = gdf.geometry[~(gdf.geometry.isna() | gdf.geometry.is_empty)]
    if geoms.empty:
        raise DataFormatError("no centreline geometries (the layer is empty)", name)
    types = set(geoms.geom_type)
    if not types & _LINE_TYPES:
        raise DataFormatError(
            f"expected LineString/MultiLineString centrelines, got {sorted(types)}; "
            "pass road centrelines, not polygons or points",
            name,
        )
    other = types - _LINE_TYPES
    if other:
        log.warning(
            "%s: ignoring %d non-line geometries (%s)",
            name,
            int((~geoms.geom_type.isin(_LINE_TYPES)).sum()),
            sorted(other),
        )
    return geoms[geoms.geom_type.isin(_LINE_TYPES)]


def rasterize_centerlines(
    vectors: str | Path | gpd.GeoDataFrame,
    like: str | Path,
    width_m: float,
    out: str | Path | None = None,
    all_touched: bool = False,
) -> np.ndarray:
    """Rasterise road centrelines, buffered to ``width_m`` metres, onto the grid of ``like``.

    Args:
        vectors: a vector file geopandas reads (GeoJSON, GeoPackage, Shapefile) or a GeoDataFrame,
            with LineString/MultiLineString geometries and a CRS.
        like: raster whose CRS, transform and size define the output grid.
        width_m: full road width in metres (the lines are buffered by ``width_m / 2``).
        out: if given, the mask is also written there as a 1-band uint8 GeoTIFF with the raster's
            CRS and transform (atomically).
        all_touched: burn every pixel the road touches, not only those whose centre is inside.

    Returns:
        uint8 array (height, width) with 1 = road, 0 = background.

    Raises:
        InputFileNotFoundError: ``vectors`` or ``like`` does not exist.
        DataFormatError: unreadable vectors, no CRS, no line geometries, or ``width_m`` <= 0.
        RasterError: ``like`` cannot be opened or has no CRS.
    """
    if not width_m > 0:
        raise DataFormatError(f"width_m must be > 0 metres, got {width_m}")
    gdf, name = _read_vectors(vectors)
    like_path = require_file(like, "reference raster")
    try:
        with rasterio.open(like_path) as src:
            crs, transform, shape, bounds = src.crs, src.transform, src.shape, src.bounds
    except rasterio.RasterioIOError as exc:
        raise RasterError(f"cannot open reference raster: {exc}", like_path) from exc
    if crs is None:
        raise RasterError("reference raster has no CRS; centrelines cannot be placed on it", like_path)

    lines = _lines(gdf, name)
    if crs.is_geographic:
        local = lines.estimate_utm_crs()
        polys = lines.to_crs(local).buffer(width_m / 2).to_crs(crs)
    else:
        # Projected CRS: buffer in its own units, converted from metres.
        polys = lines.to_crs(crs).buffer(width_m / 2 / crs.linear_units_factor[1])

    frame = shapely.box(*bounds)
    hits = polys[polys.intersects(frame)]
    if hits.empty:
        warnings.warn(
            f"{name}: no centreline overlaps the raster {like_path} (bounds {tuple(bounds)} in {crs}); "
            "the mask is all background",
            UserWarning,
            stacklevel=2,
        )
        mask = np.zeros(shape, dtype=np.uint8)
    else:
        mask = rasterize(
            ((g, 1) for g in hits),
            out_shape=shape,
            transform=transform,
            fill=0,
            all_touched=all_touched,
            dtype="uint8",
        )
    log.info("%s: %d roads -> %.2f%% road pixels on %s", name, len(hits), 100 * mask.mean(), like_path.name)

    if out is not None:
        profile = {
            "driver": "GTiff",
            "dtype": "uint8",
            "count": 1,
            "height": shape[0],
            "width": shape[1],
            "crs": crs,
            "transform": transform,
            "tiled": True,
            "blockxsize": 256,
            "blockysize": 256,
            "compress": "deflate",
            "nodata": None,
        }
        with atomic_output(out) as tmp, rasterio.open(tmp, "w", **profile) as dst:
            dst.write(mask, 1)
            dst.set_band_description(1, "road")
    return mask
