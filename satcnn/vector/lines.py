"""Road graphs from line layers: centreline files (GeoJSON, GPKG) or satcnn's own ``lines`` layer.

Metrics need graphs in metres: :func:`metric_crs` picks the layer's own CRS when it is projected
in metres, else the local UTM zone. :func:`graph_from_lines` then builds the graph:

* a layer with ``u`` and ``v`` columns (what ``satcnn vectorize roads`` writes) already is a graph;
* any other layer is noded first (``shapely.union_all`` with a 1 cm grid, so lines that cross or
  end on another line share a node there; note that this also joins bridges to the roads below),
  and chains through degree-2 nodes are merged into one edge, as osmnx simplifies SpaceNet's
  ground truth.

Nodes carry ``x``, ``y``; edges ``geometry`` and ``length`` (metres).
"""

from __future__ import annotations

import logging
from collections.abc import Hashable

import geopandas as gpd
import networkx as nx
import numpy as np
import shapely
from pyproj import CRS

from satcnn.errors import DataFormatError

__all__ = ["graph_from_lines", "metric_crs"]

log = logging.getLogger(__name__)

_LINE_TYPES = ("LineString", "MultiLineString")
_GRID_M = 0.01


def metric_crs(gdf: gpd.GeoDataFrame) -> CRS:
    """The layer's CRS if it is projected in metres, else its UTM zone."""
    crs = CRS.from_user_input(gdf.crs)
    if crs.is_projected and crs.axis_info and crs.axis_info[0].unit_name in ("metre", "meter"):
        return crs
    utm = gdf.estimate_utm_crs()
    return CRS.from_user_input(utm)


def _lines_only(gdf: gpd.GeoDataFrame, name: str) -> gpd.GeoDataFrame:
    geoms = gdf.geometry
    keep = ~(geoms.isna() | geoms.is_empty) & geoms.geom_type.isin(_LINE_TYPES)
    if not keep.any() and len(gdf):
        raise DataFormatError(
            f"expected LineString road centrelines, got {sorted(set(geoms.geom_type.dropna()))}", name
        )
    return gdf[keep]


def graph_from_lines(gdf: gpd.GeoDataFrame, crs: CRS | None = None, name: str = "lines") -> nx.MultiGraph:
    """A metric road graph from a line layer (see the module docstring).

    Args:
        gdf: Lines with a CRS, or without one: a pixel grid whose units are taken as metres.
        crs: Metric CRS to build the graph in (default :func:`metric_crs` of ``gdf``); ignored
            for lines without a CRS.
        name: What to call the layer in errors (usually its file).

    Raises:
        DataFormatError: the layer has geometries but no lines.
    """
    gdf = _lines_only(gdf, name)
    if gdf.crs is not None:
        gdf = gdf.to_crs(crs or metric_crs(gdf))
    graph = nx.MultiGraph()
    if gdf.empty:
        return graph
    if {"u", "v"} <= set(gdf.columns):
        for u, v, line in zip(gdf["u"], gdf["v"], gdf.geometry, strict=True):
            coords = np.asarray(line.coords)
            graph.add_node(int(u), x=coords[0, 0], y=coords[0, 1])
            graph.add_node(int(v), x=coords[-1, 0], y=coords[-1, 1])
            graph.add_edge(int(u), int(v), geometry=line, length=float(line.length))
        return graph
    noded = shapely.union_all(np.asarray(gdf.geometry.values), grid_size=_GRID_M)
    for part in shapely.get_parts(noded):
        if part.geom_type != "LineString" or part.length == 0:
            continue
        coords = np.asarray(part.coords)
        u, v = tuple(coords[0]), tuple(coords[-1])
        graph.add_node(u, x=u[0], y=u[1])
        graph.add_node(v, x=v[0], y=v[1])
        graph.add_edge(u, v, geometry=part, length=float(part.length))
    _merge_chains(graph)
    return nx.convert_node_labels_to_integers(graph, ordering="sorted")


def _merge_chains(graph: nx.MultiGraph) -> None:
    """Merge the two edges at each degree-2 node into one."""
    for node in [n for n, d in graph.degree if d == 2]:
        ends = list(graph.edges(node, keys=True, data=True))
        if len(ends) != 2 or any(v == node for _, v, _, _ in ends):
            continue
        (_, a, _, da), (_, b, _, db) = ends
        first = _towards(graph, da["geometry"], a)  # starts at a
        second = _towards(graph, db["geometry"], node)  # starts at node
        line = shapely.LineString(np.vstack([first, second[1:]]))
        graph.remove_node(node)
        graph.add_edge(a, b, geometry=line, length=float(line.length))


def _towards(graph: nx.MultiGraph, line: shapely.LineString, start: Hashable) -> np.ndarray:
    coords = np.asarray(line.coords)
    p = np.array([graph.nodes[start]["x"], graph.nodes[start]["y"]])
    return coords if np.hypot(*(coords[0] - p)) <= np.hypot(*(coords[-1] - p)) else coords[::-1]
