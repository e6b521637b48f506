"""Road graphs in pixel space: metric scale, edge geometry helpers, and the seam-merging builder.

A road graph is a ``networkx.MultiGraph``. Node attribute ``xy``: position ``(x, y)`` in pixel
space (``x`` = column, ``y`` = row, pixel centres at ``+0.5``). Edge attributes: ``xy``, the
``(n, 2)`` polyline from the edge's ``start`` node to its other end, and ``bridged`` (the edge
contains a segment added to bridge a gap). :class:`Metric` turns pixel offsets into metres.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np
import shapely
from affine import Affine
from rasterio.crs import CRS

from satcnn.errors import RasterError

__all__ = ["Metric", "PixelGraphBuilder", "dissolve_node", "edge_length_m", "edge_xy", "to_pixel_space"]

log = logging.getLogger(__name__)

_M_PER_DEG_LAT = 110_574.0
_M_PER_DEG_LON_EQUATOR = 111_320.0


@dataclass(frozen=True)
class Metric:
    """A linear map from pixel offsets ``(dx, dy)`` to metre offsets.

    For a projected CRS it is the transform's linear part times the CRS unit in metres; for a
    geographic CRS the degrees are scaled at the raster's centre latitude (exact to well under 1 %
    over a tile of a few kilometres).
    """

    matrix: np.ndarray  # (2, 2)

    @classmethod
    def from_raster(
        cls, transform: Affine, crs: CRS | None, height: int, width: int, *, allow_no_crs: bool = False
    ) -> Metric:
        """The metric of a raster grid.

        Without a CRS and with ``allow_no_crs``, the transform's units are taken as metres (a pixel
        grid such as Massachusetts Roads' 1 m tiles, which carry no location).

        Raises:
            RasterError: no CRS (pixel sizes would have no unit) and not ``allow_no_crs``.
        """
        lin = np.array([[transform.a, transform.b], [transform.d, transform.e]], dtype=np.float64)
        if crs is None and allow_no_crs:
            return cls(lin)
        if crs is None:
            raise RasterError(
                "has no CRS, so pixel sizes have no unit; assign one with `rio edit-info --crs`"
            )
        if crs.is_geographic:
            _, lat = transform * (width / 2, height / 2)
            kx = _M_PER_DEG_LON_EQUATOR * math.cos(math.radians(lat))
            return cls(lin * np.array([[kx], [_M_PER_DEG_LAT]]))
        return cls(lin * float(crs.linear_units_factor[1]))

    @property
    def pixel_size(self) -> float:
        """Side of a square pixel with the same area, in metres."""
        return math.sqrt(abs(float(np.linalg.det(self.matrix))))

    def to_metric(self, xy: np.ndarray) -> np.ndarray:
        """Pixel-space points ``(n, 2)`` in a local metric frame (metres, same origin)."""
        return np.asarray(xy, dtype=np.float64) @ self.matrix.T

    def from_metric(self, xy: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`to_metric`."""
        return np.asarray(xy, dtype=np.float64) @ np.linalg.inv(self.matrix).T

    def length(self, xy: np.ndarray) -> float:
        """Length in metres of a pixel-space polyline."""
        steps = np.diff(np.asarray(xy, dtype=np.float64), axis=0) @ self.matrix.T
        return float(np.hypot(steps[:, 0], steps[:, 1]).sum())


def edge_xy(data: dict[str, Any], start: Hashable) -> np.ndarray:
    """The edge's polyline oriented to begin at node ``start``."""
    xy: np.ndarray = data["xy"]
    return xy if data["start"] == start else xy[::-1]


def edge_length_m(data: dict[str, Any], metric: Metric) -> float:
    """Length of an edge in metres (cached in ``length_m``)."""
    if "length_m" not in data:
        data["length_m"] = metric.length(data["xy"])
    return float(data["length_m"])


def dissolve_node(graph: nx.MultiGraph, node: Hashable) -> tuple[Hashable, Hashable, int] | None:
    """Join the two edges of a degree-2 node into one; return the new edge, or None.

    Nothing happens when the node does not have exactly two edge ends or carries a self-loop.
    """
    if graph.degree(node) != 2:
        return None
    ends = list(graph.edges(node, keys=True, data=True))
    if len(ends) != 2 or any(v == node for _, v, _, _ in ends):
        return None
    (_, a, _, da), (_, b, _, db) = ends
    first = edge_xy(da, a)  # a -> node
    second = edge_xy(db, node)  # node -> b
    xy = np.concatenate([first, second[1:]])
    bridged = bool(da.get("bridged", False) or db.get("bridged", False))
    graph.remove_node(node)
    key = graph.add_edge(a, b, xy=xy, start=a, bridged=bridged)
    return a, b, key


def _canonical(xy: np.ndarray) -> np.ndarray:
    """Orient a polyline so that results do not depend on the order it was traced in."""
    return xy[::-1] if tuple(xy[-1]) < tuple(xy[0]) else xy


def _presimplify(xy: np.ndarray, tolerance: float) -> np.ndarray:
    """Douglas-Peucker on integer pixel chains; keeps a subset of the original pixels."""
    xy = _canonical(xy)
    if len(xy) <= 2:
        return xy
    line = shapely.simplify(shapely.linestrings(xy.astype(np.float64)), tolerance, preserve_topology=False)
    return np.rint(shapely.get_coordinates(line)).astype(np.int32)


class PixelGraphBuilder:
    """Collects skeleton runs block by block and joins them at block seams.

    Nodes are pixels ``(row, col)``. A run end whose 8-neighbours all lie in processed blocks is
    complete: if exactly two runs meet there it is a seam cut and is dissolved. Edges whose two
    ends are complete are simplified at once (Douglas-Peucker, ``presimplify_px``, on the
    canonically oriented chain), so memory grows with the road network, not the raster.
    """

    def __init__(self, height: int, width: int, block: int, presimplify_px: float = 0.5) -> None:
        self.height, self.width, self.block = height, width, block
        self.presimplify_px = presimplify_px
        self.graph = nx.MultiGraph()
        self._pending: set[tuple[int, int]] = set()
        self._done: set[tuple[int, int]] = set()

    def add_block(self, index: tuple[int, int], runs: Iterable[np.ndarray]) -> None:
        """Add the runs of block ``index`` (see :func:`satcnn.vector.blocks.skeleton_runs`)."""
        for run in runs:
            u = (int(run[0, 0]), int(run[0, 1]))
            v = (int(run[-1, 0]), int(run[-1, 1]))
            self.graph.add_edge(u, v, xy=run, start=u, raw=True)
            self._pending.update((u, v))
        self._done.add(index)
        self._settle(self._pending)

    def finish(self) -> nx.MultiGraph:
        """Settle every remaining node and return the graph (pixel chains as int32 ``(row, col)``)."""
        self._settle(self._pending, force=True)
        for u, v, k, data in list(self.graph.edges(keys=True, data=True)):
            if data["raw"]:
                self._finalise_edge(u, v, k)
        return self.graph

    def _blocks_around(self, node: tuple[int, int]) -> set[tuple[int, int]]:
        r, c = node
        b = self.block
        rows = {min(max(r + d, 0), self.height - 1) // b for d in (-1, 0, 1)}
        cols = {min(max(c + d, 0), self.width - 1) // b for d in (-1, 0, 1)}
        return {(i, j) for i in rows for j in cols}

    def _settle(self, nodes: set[tuple[int, int]], force: bool = False) -> None:
        ready = [n for n in nodes if force or self._blocks_around(n) <= self._done]
        self._pending.difference_update(ready)
        touched: list[tuple[Hashable, Hashable, int]] = []
        for n in ready:
            if n not in self.graph:
                continue
            merged = dissolve_node(self.graph, n)
            if merged is not None:
                a, b, k = merged
                self.graph.edges[a, b, k]["raw"] = True
                touched.append(merged)
            else:
                touched.extend((n, v, k) for _, v, k in self.graph.edges(n, keys=True))
        for u, v, k in touched:
            if (
                self.graph.has_edge(u, v, k)
                and self.graph.edges[u, v, k]["raw"]
                and u not in self._pending
                and v not in self._pending
            ):
                self._finalise_edge(u, v, k)

    def _finalise_edge(self, u: Hashable, v: Hashable, k: int) -> None:
        data = self.graph.edges[u, v, k]
        xy = _presimplify(data["xy"], self.presimplify_px)
        data.update(xy=xy, start=(int(xy[0, 0]), int(xy[0, 1])), raw=False)


def to_pixel_space(pixels: nx.MultiGraph) -> nx.MultiGraph:
    """Relabel a builder graph with integer node ids and ``(x, y)`` pixel-centre coordinates."""
    out = nx.MultiGraph()
    ids: dict[Hashable, int] = {}
    for i, node in enumerate(sorted(pixels.nodes)):
        ids[node] = i
        r, c = node
        out.add_node(i, xy=np.array([c + 0.5, r + 0.5]))
    for u, v, data in pixels.edges(data=True):
        rc = data["xy"]
        xy = np.column_stack([rc[:, 1] + 0.5, rc[:, 0] + 0.5]).astype(np.float64)
        start = ids[data["start"]]
        other = ids[v] if ids[u] == start else ids[u]
        out.add_edge(start, other, xy=xy, start=start, bridged=False)
    return out
