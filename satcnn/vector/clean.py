"""Cleaning a skeleton graph into a road network: junction clusters, spurs, gaps, simplification.

All lengths are in metres (through :class:`~satcnn.vector.graph.Metric`), so the same settings
work at 0.3 m and at 1 m per pixel. The steps, in order (:func:`clean_graph`):

1. contract junction clusters: skeleton junctions are often two or three adjacent pixels, and an
   X crossing becomes two T junctions a road width apart; junctions joined by an edge shorter
   than ``junction_m`` become one node at their centre;
2. prune spurs: an edge from a junction to a dead end shorter than ``spur_m`` is removed (repeated
   until none is left, since removing one can expose another); connected pieces shorter than
   ``spur_m`` in total are removed too;
3. bridge gaps: a dead end is joined to another dead end, or to the nearest point of another edge,
   closer than ``gap_m`` when the road's direction at the dead end points at it within
   ``gap_angle`` degrees (and, for two dead ends, both point at each other);
4. reach the edge: a dead end closer than ``gap_m`` to the raster's edge, pointing at it, is
   extended to it (a skeleton stops about half a road width short of the edge, while the road
   and its centreline go on);
5. simplify: Douglas-Peucker with ``simplify_m`` on each edge (end points stay).
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Hashable
from dataclasses import dataclass

import networkx as nx
import numpy as np
import shapely
from scipy.spatial import cKDTree

from satcnn.checks import require_at_least, require_in_range
from satcnn.vector.graph import Metric, dissolve_node, edge_length_m, edge_xy

__all__ = ["CleanOptions", "clean_graph"]

log = logging.getLogger(__name__)

# (gap length, tie-break order, dead end, other dead end or None for a point on an edge, target)
_Candidate = tuple[float, int, Hashable, Hashable | None, np.ndarray]


@dataclass(frozen=True)
class CleanOptions:
    """Settings of :func:`clean_graph` (metres and degrees; 0 turns a step off).

    Attributes:
        spur_m: Remove dead-end branches (and isolated pieces) shorter than this.
        gap_m: Bridge gaps shorter than this.
        gap_angle: Largest angle in degrees between the road's direction and the gap.
        simplify_m: Douglas-Peucker tolerance for the output lines.
        junction_m: Junctions joined by an edge shorter than this (and never less than 3 pixels) are
            one junction: skeletons split an X crossing into two T junctions about a road width
            apart.
    """

    spur_m: float = 10.0
    gap_m: float = 10.0
    gap_angle: float = 30.0
    simplify_m: float = 1.0
    junction_m: float = 5.0

    def __post_init__(self) -> None:
        for name in ("spur_m", "gap_m", "simplify_m", "junction_m"):
            require_at_least(name, getattr(self, name), 0)
        require_in_range("gap_angle", self.gap_angle, 0, 90, low_open=True, unit="degrees")


def clean_graph(
    graph: nx.MultiGraph, metric: Metric, options: CleanOptions, shape: tuple[int, int] | None = None
) -> nx.MultiGraph:
    """Clean a pixel-space road graph in place (see the module docstring) and return it.

    ``shape`` is the raster's ``(height, width)``, for extending dead ends to its edge.
    """
    contract_clusters(graph, max(3.0, options.junction_m / metric.pixel_size))
    dissolve_all(graph)
    if options.spur_m > 0:
        prune_spurs(graph, metric, options.spur_m)
    if options.gap_m > 0:
        bridge_gaps(graph, metric, options.gap_m, options.gap_angle)
        dissolve_all(graph)
        if shape is not None:
            extend_to_edge(graph, metric, shape, options.gap_m, options.gap_angle)
    if options.simplify_m > 0:
        simplify_edges(graph, metric, options.simplify_m)
    for _, _, data in graph.edges(data=True):
        data.pop("length_m", None)
    return graph


def dissolve_all(graph: nx.MultiGraph) -> None:
    """Join the two edges at every degree-2 node (self-loops stay)."""
    for node in [n for n, d in graph.degree if d == 2]:
        if node in graph:
            dissolve_node(graph, node)


def contract_clusters(graph: nx.MultiGraph, cluster_px: float) -> None:
    """Merge junctions (degree >= 3) linked by edges shorter than ``cluster_px`` pixels."""
    if cluster_px <= 0:
        return
    short = nx.Graph()
    for u, v, data in graph.edges(data=True):
        if graph.degree(u) >= 3 and graph.degree(v) >= 3 and _pixel_length(data["xy"]) < cluster_px:
            short.add_edge(u, v)
    next_id = max(graph.nodes, default=-1) + 1
    for members in nx.connected_components(short):
        if len(members) < 2:
            continue
        centre = np.mean([graph.nodes[n]["xy"] for n in members], axis=0)
        new = next_id
        next_id += 1
        graph.add_node(new, xy=centre)
        for u, v, data in list(graph.edges(members, data=True)):
            inner_u, inner_v = u in members, v in members
            xy = edge_xy(data, u)
            if inner_u and inner_v and _pixel_length(xy) < cluster_px:
                continue  # the short links inside the cluster disappear
            xy = xy.copy()
            xy[0] = centre
            if inner_v:
                xy[-1] = centre
            other = new if inner_v else v
            graph.add_edge(new, other, xy=xy, start=new, bridged=data.get("bridged", False))
        graph.remove_nodes_from(members)


def _pixel_length(xy: np.ndarray) -> float:
    steps = np.diff(xy, axis=0)
    return float(np.hypot(steps[:, 0], steps[:, 1]).sum())


def prune_spurs(graph: nx.MultiGraph, metric: Metric, spur_m: float) -> None:
    """Remove dead-end branches and isolated pieces shorter than ``spur_m`` metres."""
    changed = True
    while changed:
        changed = False
        spurs = []
        for u, v, k, data in graph.edges(keys=True, data=True):
            du, dv = graph.degree(u), graph.degree(v)
            if u != v and min(du, dv) == 1 and max(du, dv) >= 3 and edge_length_m(data, metric) < spur_m:
                spurs.append((u, v, k))
        # Remove at most one spur per junction per pass, so a junction of two short spurs keeps one.
        seen: set[Hashable] = set()
        for u, v, k in spurs:
            if not graph.has_edge(u, v, k):  # gone with a node dissolved earlier in this pass
                continue
            junction, tip = (u, v) if graph.degree(u) >= 3 else (v, u)
            if junction in seen or graph.degree(junction) < 3:
                continue
            seen.add(junction)
            graph.remove_edge(u, v, k)
            graph.remove_node(tip)
            dissolve_node(graph, junction)
            changed = True
    for component in list(nx.connected_components(graph)):
        sub = graph.subgraph(component)
        total = sum(edge_length_m(d, metric) for _, _, d in sub.edges(data=True))
        if total < spur_m:
            graph.remove_nodes_from(component)


def _direction(graph: nx.MultiGraph, tip: Hashable, metric: Metric, reach_m: float) -> np.ndarray | None:
    """Unit vector (metric frame) in which the road leaves dead end ``tip``, from its last ``reach_m``."""
    ((_, _, data),) = graph.edges(tip, data=True)
    xy = metric.to_metric(edge_xy(data, tip))
    steps = np.hypot(*np.diff(xy, axis=0).T)
    along = np.cumsum(steps)
    i = int(np.searchsorted(along, reach_m))
    back = xy[min(i + 1, len(xy) - 1)]
    vec = xy[0] - back
    norm = float(np.hypot(*vec))
    return vec / norm if norm > 0 else None


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    """Angle in degrees between unit vector ``a`` and vector ``b``."""
    nb = float(np.hypot(*b))
    if nb == 0:
        return 0.0
    return math.degrees(math.acos(max(-1.0, min(1.0, float(a @ b) / nb))))


def bridge_gaps(graph: nx.MultiGraph, metric: Metric, gap_m: float, gap_angle: float) -> None:
    """Join dead ends across gaps shorter than ``gap_m`` where the road's direction agrees."""
    tips = [n for n, d in graph.degree if d == 1]
    if not tips:
        return
    reach = max(2 * gap_m, 3 * metric.pixel_size)
    pos = {n: metric.to_metric(graph.nodes[n]["xy"][None])[0] for n in tips}
    dirs = {n: _direction(graph, n, metric, reach) for n in tips}
    candidates: list[_Candidate] = []
    order = itertools.count()
    tree = cKDTree(np.array([pos[n] for n in tips]))
    for i, j in sorted(tree.query_pairs(gap_m)):
        a, b = tips[i], tips[j]
        da, db = dirs[a], dirs[b]
        if da is None or db is None or graph.has_edge(a, b):
            continue
        gap = pos[b] - pos[a]
        if _angle(da, gap) <= gap_angle and _angle(db, -gap) <= gap_angle:
            candidates.append((float(np.hypot(*gap)), next(order), a, b, pos[b]))
    candidates += _tip_to_edge_candidates(graph, metric, tips, pos, dirs, gap_m, gap_angle, order)
    used: set[Hashable] = set()
    for dist, _, a, b, target in sorted(candidates, key=lambda c: (c[0], c[1])):
        if a in used or (b is not None and b in used) or a not in graph:
            continue
        if b is None:
            b = _split_nearest(graph, metric, target, exclude=a)
            if b is None:
                continue
        used.update((a, b))
        xy = np.vstack([graph.nodes[a]["xy"], graph.nodes[b]["xy"]])
        graph.add_edge(a, b, xy=xy, start=a, bridged=True)
        log.debug("bridged a %.1f m gap", dist)


def _tip_to_edge_candidates(
    graph: nx.MultiGraph,
    metric: Metric,
    tips: list[Hashable],
    pos: dict[Hashable, np.ndarray],
    dirs: dict[Hashable, np.ndarray | None],
    gap_m: float,
    gap_angle: float,
    order: itertools.count[int],
) -> list[_Candidate]:
    """Dead ends that point at another edge (a T-junction the mask missed)."""
    edges = list(graph.edges(keys=True, data=True))
    if not edges:
        return []
    lines = np.array([shapely.LineString(metric.to_metric(d["xy"])) for _, _, _, d in edges], dtype=object)
    tree = shapely.STRtree(lines)
    out: list[_Candidate] = []
    for tip in tips:
        d = dirs[tip]
        if d is None:
            continue
        point = shapely.points(pos[tip])
        best: tuple[float, np.ndarray] | None = None
        for idx in tree.query(point, predicate="dwithin", distance=gap_m):
            u, v, _, _ = edges[idx]
            if tip in (u, v):
                continue
            near = shapely.get_coordinates(shapely.shortest_line(point, lines[idx]))[1]
            gap = near - pos[tip]
            dist = float(np.hypot(*gap))
            if 0 < dist <= gap_m and _angle(d, gap) <= gap_angle and (best is None or dist < best[0]):
                best = (dist, near)
        if best is not None:
            out.append((best[0], next(order), tip, None, best[1]))
    return out


def _split_nearest(graph: nx.MultiGraph, metric: Metric, target: np.ndarray, exclude: Hashable) -> int | None:
    """Insert a node on the edge nearest to metric point ``target``; return it."""
    point = shapely.points(target)
    best = None
    for u, v, k, data in graph.edges(keys=True, data=True):
        if exclude in (u, v):
            continue
        dist = shapely.distance(point, shapely.linestrings(metric.to_metric(data["xy"])))
        if best is None or dist < best[0]:
            best = (dist, u, v, k)
    if best is None:
        return None
    _, u, v, k = best
    data = graph.edges[u, v, k]
    xy = edge_xy(data, u)
    xy_m = metric.to_metric(xy)
    line = shapely.linestrings(xy_m)
    at = float(shapely.line_locate_point(line, point))
    along = np.r_[0, np.cumsum(np.hypot(*np.diff(xy_m, axis=0).T))]
    if at <= 0:
        return int(u)
    if at >= along[-1]:
        return int(v)
    i = int(np.searchsorted(along, at, side="right"))  # first vertex beyond the cut
    cut = metric.from_metric(shapely.get_coordinates(shapely.line_interpolate_point(line, at)))[0]
    head = xy[: i - 1] if along[i - 1] == at else xy[:i]
    new = max(graph.nodes) + 1
    graph.add_node(new, xy=cut)
    bridged = data.get("bridged", False)
    graph.add_edge(u, new, xy=np.vstack([head, cut]), start=u, bridged=bridged)
    graph.add_edge(new, v, xy=np.vstack([cut, xy[i:]]), start=new, bridged=bridged)
    graph.remove_edge(u, v, k)
    return new


def extend_to_edge(
    graph: nx.MultiGraph, metric: Metric, shape: tuple[int, int], gap_m: float, gap_angle: float
) -> None:
    """Extend dead ends that point at the raster's edge, closer than ``gap_m``, onto it."""
    height, width = shape
    frame = shapely.LinearRing(metric.to_metric(np.array([[0, 0], [width, 0], [width, height], [0, height]])))
    reach = max(2 * gap_m, 3 * metric.pixel_size)
    for tip in [n for n, d in graph.degree if d == 1]:
        direction = _direction(graph, tip, metric, reach)
        if direction is None:
            continue
        p = metric.to_metric(graph.nodes[tip]["xy"][None])[0]
        dist = float(shapely.distance(shapely.Point(p), frame))
        if dist == 0 or dist > gap_m:
            continue
        ray = shapely.LineString([p, p + direction * gap_m / math.cos(math.radians(gap_angle))])
        hit = shapely.intersection(ray, frame)
        if hit.is_empty:
            continue
        points = shapely.get_coordinates(hit)
        end = points[np.argmin(np.hypot(*(points - p).T))]
        if _angle(direction, end - p) > gap_angle or float(np.hypot(*(end - p))) > gap_m:
            continue
        ((_, other, data),) = graph.edges(tip, data=True)
        xy = np.vstack([edge_xy(data, other), metric.from_metric(end[None])])
        graph.nodes[tip]["xy"] = xy[-1]
        data.update(xy=xy, start=other)
        data.pop("length_m", None)


def simplify_edges(graph: nx.MultiGraph, metric: Metric, tolerance_m: float) -> None:
    """Douglas-Peucker every edge in the metric frame; end points are kept."""
    for _, _, data in graph.edges(data=True):
        xy = data["xy"]
        if len(xy) <= 2:
            continue
        line = shapely.simplify(
            shapely.linestrings(metric.to_metric(xy)), tolerance_m, preserve_topology=False
        )
        data["xy"] = metric.from_metric(shapely.get_coordinates(line))
        data.pop("length_m", None)
