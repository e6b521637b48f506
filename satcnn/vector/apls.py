"""APLS (Average Path Length Similarity), as SpaceNet 3 defines it, in pure Python (networkx + shapely).

Follows CosmiQ's reference ``apls.py`` (Van Etten et al., "SpaceNet: A Remote Sensing Dataset
and Challenge Series", 2018):

1. Control points: every node of a graph, plus points every ``interval_m`` (50 m) along edges
   that are curved (``|bbox diagonal - length| / length >= curved_eps``, 0.012) and at least
   ``0.75 * interval_m`` long (one midpoint when no longer than ``interval_m``).
2. Snapping: each control point of graph A is inserted into graph B at the nearest point of B's
   edges, if that is within ``snap_m`` (4 m); otherwise it has no counterpart.
3. For every ordered pair of A's control points ``(s, t)`` connected in A by a path of at least
   ``min_path_m`` (10 m), the difference is ``min(1, |L_A - L_B| / L_A)`` with ``L_B`` the
   shortest path between their snapped copies in B, or 1 when there is none. A control point
   that did not snap counts 1 for every other control point it reaches in A (the reference code
   does not apply the 10 m floor in this case, and neither does this one).
4. ``C(A -> B) = 1 - mean(differences)``; APLS is the harmonic mean of ``C(truth -> proposal)``
   and ``C(proposal -> truth)``, or 0 when either is 0.

Graphs are ``networkx`` (Multi)Graphs in a metric CRS: nodes carry ``x``, ``y`` (metres); edges
carry ``geometry`` (a shapely LineString from one end to the other) and ``length`` (metres).
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

import networkx as nx
import numpy as np
import shapely
import shapely.ops

__all__ = ["APLSResult", "apls", "control_graph", "oriented_line", "snap_points"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class APLSResult:
    """APLS and its two halves, with the number of routes each half compared."""

    apls: float
    truth_onto_proposal: float
    proposal_onto_truth: float
    routes_truth_onto_proposal: int
    routes_proposal_onto_truth: int

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for JSON)."""
        return asdict(self)


def oriented_line(graph: nx.MultiGraph, u: Hashable, v: Hashable, data: dict[str, Any]) -> shapely.LineString:
    """Edge geometry oriented from ``u`` to ``v``."""
    line = data.get("geometry")
    pu = (graph.nodes[u]["x"], graph.nodes[u]["y"])
    if line is None:
        pv = (graph.nodes[v]["x"], graph.nodes[v]["y"])
        return shapely.LineString([pu, pv])
    coords = np.asarray(line.coords)
    if np.hypot(*(coords[0] - pu)) > np.hypot(*(coords[-1] - pu)):
        return shapely.LineString(coords[::-1])
    return line


def _split_edge(
    graph: nx.MultiGraph,
    u: Hashable,
    v: Hashable,
    line: shapely.LineString,
    cuts: list[tuple[float, Hashable]],
) -> None:
    """Insert nodes ``name`` at distances ``d`` along the u -> v ``line`` (sorted)."""
    prev_node, prev_d = u, 0.0
    length = float(line.length)
    for d, name in sorted(cuts, key=lambda c: c[0]):
        d = min(max(d, 0.0), length)
        point = line.interpolate(d)
        graph.add_node(name, x=point.x, y=point.y)
        piece = shapely.ops.substring(line, prev_d, d) if d > prev_d else shapely.LineString([point, point])
        if piece.geom_type == "Point":
            piece = shapely.LineString([piece, piece])
        graph.add_edge(prev_node, name, geometry=piece, length=max(d - prev_d, 0.0))
        prev_node, prev_d = name, d
    tail = shapely.ops.substring(line, prev_d, length) if length > prev_d else None
    if tail is None or tail.geom_type == "Point":
        end = line.interpolate(length)
        tail = shapely.LineString([end, end])
    graph.add_edge(prev_node, v, geometry=tail, length=max(length - prev_d, 0.0))


def control_graph(
    graph: nx.MultiGraph, interval_m: float = 50.0, curved_eps: float = 0.012, prefix: Hashable = "mid"
) -> nx.MultiGraph:
    """A copy of ``graph`` with control points inserted along curved edges (step 1)."""
    out = nx.MultiGraph(graph)
    count = 0
    for u, v, k, data in list(graph.edges(keys=True, data=True)):
        line = oriented_line(graph, u, v, data)
        length = float(data.get("length", line.length))
        if length <= 0:
            continue
        minx, miny, maxx, maxy = line.bounds
        if abs(np.hypot(maxx - minx, maxy - miny) - length) / length < curved_eps:
            continue
        if length < 0.75 * interval_m:
            continue
        if length <= interval_m:
            dists = [0.5 * length]
        else:
            n = len(np.arange(0, length, interval_m)) + 1
            dists = list(np.linspace(0, length, n)[1:-1])
        cuts: list[tuple[float, Hashable]] = []
        for d in dists:
            cuts.append((float(d) * line.length / length, (prefix, count)))
            count += 1
        out.remove_edge(u, v, k)
        _split_edge(out, u, v, line, cuts)
    return out


def snap_points(
    graph: nx.MultiGraph, points: Iterable[tuple[Hashable, float, float]], snap_m: float
) -> tuple[nx.MultiGraph, set[Hashable]]:
    """Insert each ``(name, x, y)`` at the nearest point of ``graph``'s edges within ``snap_m`` (step 2).

    Returns:
        The new graph and the names that were inserted.
    """
    edges = list(graph.edges(keys=True, data=True))
    out = nx.MultiGraph(graph)
    if not edges:
        return out, set()
    lines = [oriented_line(graph, u, v, d) for u, v, _, d in edges]
    tree = shapely.STRtree(lines)
    cuts: dict[int, list[tuple[float, Hashable]]] = {}
    for name, x, y in points:
        point = shapely.Point(x, y)
        hits = tree.query_nearest(point, max_distance=snap_m, all_matches=False)
        if len(hits) == 0:
            continue
        i = int(hits[0])
        cuts.setdefault(i, []).append((float(lines[i].project(point)), name))
    for i, edge_cuts in cuts.items():
        u, v, k, _ = edges[i]
        out.remove_edge(u, v, k)
        _split_edge(out, u, v, lines[i], edge_cuts)
    return out, {name for edge_cuts in cuts.values() for _, name in edge_cuts}


def _half(
    source: nx.MultiGraph,
    target: nx.MultiGraph,
    *,
    snap_m: float,
    interval_m: float,
    curved_eps: float,
    min_path_m: float,
    max_nodes: int | None,
    rng: np.random.Generator,
) -> tuple[float, int]:
    """``C(source -> target)`` and the number of routes compared."""
    src = control_graph(source, interval_m, curved_eps)
    controls = list(src.nodes)
    if max_nodes is not None and len(controls) > max_nodes:
        controls = [controls[i] for i in sorted(rng.choice(len(controls), max_nodes, replace=False))]
    control_set = set(controls)
    points = [(("control", n), src.nodes[n]["x"], src.nodes[n]["y"]) for n in controls]
    snapped_graph, snapped = snap_points(target, points, snap_m)
    diffs: list[float] = []
    for s in controls:
        lengths = nx.single_source_dijkstra_path_length(src, s, weight="length")
        reach = [t for t in lengths if t in control_set and t != s]
        if ("control", s) not in snapped:
            diffs.extend(1.0 for _ in reach)
            continue
        found = nx.single_source_dijkstra_path_length(snapped_graph, ("control", s), weight="length")
        for t in reach:
            length = float(lengths[t])
            if length < min_path_m:
                continue
            other = found.get(("control", t))
            diffs.append(1.0 if other is None else min(1.0, abs(length - float(other)) / length))
    if not diffs:
        return 0.0, 0
    return 1.0 - float(np.mean(diffs)), len(diffs)


def apls(
    truth: nx.MultiGraph,
    proposal: nx.MultiGraph,
    *,
    snap_m: float = 4.0,
    interval_m: float = 50.0,
    curved_eps: float = 0.012,
    min_path_m: float = 10.0,
    max_nodes: int | None = None,
    seed: int = 0,
) -> APLSResult:
    """APLS of ``proposal`` against ``truth`` (see the module docstring).

    Args:
        truth: Ground-truth graph (metric CRS).
        proposal: Proposed graph (same CRS).
        snap_m: Largest distance a control point snaps onto the other graph.
        interval_m: Spacing of control points along curved edges.
        curved_eps: Edges straighter than this get no control points.
        min_path_m: Shorter routes are not compared.
        max_nodes: Compare routes between at most this many control points per half (sampled
            with ``seed``), for large graphs; ``None`` uses all of them, as SpaceNet does.
        seed: Seed of that sample.

    Returns:
        The score and its two halves.
    """
    if truth.number_of_nodes() == 0 or proposal.number_of_nodes() == 0:
        return APLSResult(0.0, 0.0, 0.0, 0, 0)
    rng = np.random.default_rng(seed)
    opts: dict[str, Any] = dict(
        snap_m=snap_m,
        interval_m=interval_m,
        curved_eps=curved_eps,
        min_path_m=min_path_m,
        max_nodes=max_nodes,
    )
    c_tp, n_tp = _half(truth, proposal, rng=rng, **opts)
    c_pt, n_pt = _half(proposal, truth, rng=rng, **opts)
    total = 0.0 if c_tp <= 0 or c_pt <= 0 else 2.0 / (1.0 / c_tp + 1.0 / c_pt)
    log.info("APLS %.4f (truth->proposal %.4f, proposal->truth %.4f)", total, c_tp, c_pt)
    return APLSResult(total, c_tp, c_pt, n_tp, n_pt)
