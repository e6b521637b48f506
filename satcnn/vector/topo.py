"""Junction and TOPO precision / recall of a proposed road graph against the truth.

* Junctions: nodes of degree >= 3 are matched one to one, closest pairs first, within
  ``match_m``; precision is the share of proposed junctions matched, recall the share of true
  junctions matched.
* TOPO (Biagioni and Eriksson 2012, as in CosmiQ's ``topo_metric.py``): from ``n_origins`` true
  nodes, take the true subgraph within ``radius_m`` (straight-line, connected to the origin) and
  put *holes* at its nodes and every ``interval_m`` along its edges, measured outward from the
  origin. The proposal's node nearest the origin (within ``hole_m``) seeds the same construction
  on the proposal, giving *marbles*. Each marble fills the nearest empty hole within ``hole_m``.
  Summed over origins: precision = filled / marbles, recall = filled / holes.

Graphs are as in :mod:`satcnn.vector.apls` (metric CRS; ``x``, ``y``, ``geometry``, ``length``).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import asdict, dataclass
from typing import Any

import networkx as nx
import numpy as np
from scipy.spatial import cKDTree

from satcnn.vector.apls import oriented_line

__all__ = ["PRF", "junction_metric", "topo_metric"]


@dataclass(frozen=True)
class PRF:
    """Precision, recall and F1 with the counts behind them."""

    precision: float
    recall: float
    f1: float
    true_positives: int
    proposed: int
    truth: int

    @classmethod
    def from_counts(cls, tp: int, proposed: int, truth: int) -> PRF:
        """Scores from counts; an empty side scores 1 when the other is empty too, else 0."""
        p = tp / proposed if proposed else float(truth == 0)
        r = tp / truth if truth else float(proposed == 0)
        f1 = 2 * p * r / (p + r) if p + r > 0 else 0.0
        return cls(p, r, f1, tp, proposed, truth)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for JSON)."""
        return asdict(self)


def _xy(graph: nx.MultiGraph, nodes: list[Hashable]) -> np.ndarray:
    return np.array([(graph.nodes[n]["x"], graph.nodes[n]["y"]) for n in nodes], dtype=np.float64).reshape(
        -1, 2
    )


def _greedy_match(a: np.ndarray, b: np.ndarray, radius: float) -> int:
    """Number of one-to-one pairs between point sets, closest first, within ``radius``."""
    if len(a) == 0 or len(b) == 0:
        return 0
    pairs = cKDTree(a).sparse_distance_matrix(cKDTree(b), radius, output_type="ndarray")
    used_a: set[int] = set()
    used_b: set[int] = set()
    for i, j, _ in sorted(pairs.tolist(), key=lambda p: (p[2], p[0], p[1])):
        if int(i) not in used_a and int(j) not in used_b:
            used_a.add(int(i))
            used_b.add(int(j))
    return len(used_a)


def junction_metric(truth: nx.MultiGraph, proposal: nx.MultiGraph, match_m: float = 10.0) -> PRF:
    """Junction precision and recall (see the module docstring)."""
    jt = [n for n, d in truth.degree if d >= 3]
    jp = [n for n, d in proposal.degree if d >= 3]
    tp = _greedy_match(_xy(proposal, jp), _xy(truth, jt), match_m)
    return PRF.from_counts(tp, len(jp), len(jt))


def _holes(
    graph: nx.MultiGraph, origin: Hashable, radius_m: float, interval_m: float, tree: cKDTree
) -> np.ndarray:
    """Hole (or marble) positions around ``origin``."""
    nodes = list(graph.nodes)
    o = np.array([graph.nodes[origin]["x"], graph.nodes[origin]["y"]])
    near = [nodes[i] for i in tree.query_ball_point(o, radius_m)]
    sub = graph.subgraph(near)
    keep = nx.node_connected_component(sub, origin)
    sub = sub.subgraph(keep)
    points = [(sub.nodes[n]["x"], sub.nodes[n]["y"]) for n in sub.nodes]
    for u, v, data in sub.edges(data=True):
        line = oriented_line(sub, u, v, data)
        start, end = np.asarray(line.coords)[[0, -1]]
        if np.hypot(*(end - o)) < np.hypot(*(start - o)):
            line = oriented_line(sub, v, u, data)  # radially outward, so both graphs place holes alike
        length = float(line.length)
        if length < interval_m:
            continue
        for d in np.arange(0, length, interval_m)[1:]:
            p = line.interpolate(float(d))
            points.append((p.x, p.y))
    return np.array(points, dtype=np.float64).reshape(-1, 2)


def _fill(holes: np.ndarray, marbles: np.ndarray, hole_m: float) -> int:
    """Marbles in order each fill the nearest empty hole within ``hole_m``."""
    if len(holes) == 0 or len(marbles) == 0:
        return 0
    tree = cKDTree(holes)
    filled: set[int] = set()
    for m in marbles:
        free = [i for i in tree.query_ball_point(m, hole_m) if i not in filled]
        if free:
            filled.add(min(free, key=lambda i: float(np.hypot(*(holes[i] - m)))))
    return len(filled)


def topo_metric(
    truth: nx.MultiGraph,
    proposal: nx.MultiGraph,
    *,
    radius_m: float = 150.0,
    interval_m: float = 30.0,
    hole_m: float = 5.0,
    n_origins: int = 20,
    seed: int = 0,
) -> PRF:
    """TOPO precision and recall (see the module docstring); origins are drawn with ``seed``."""
    if truth.number_of_nodes() == 0:
        return PRF.from_counts(0, int(proposal.number_of_nodes() > 0), 0)
    t_nodes, p_nodes = list(truth.nodes), list(proposal.nodes)
    t_tree = cKDTree(_xy(truth, t_nodes))
    p_tree = cKDTree(_xy(proposal, p_nodes)) if p_nodes else None
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(t_nodes), size=min(n_origins, len(t_nodes)), replace=False)
    tp = fp = fn = 0
    for i in sorted(int(p) for p in picks):
        origin = t_nodes[i]
        holes = _holes(truth, origin, radius_m, interval_m, t_tree)
        o = np.array([truth.nodes[origin]["x"], truth.nodes[origin]["y"]])
        dist, j = (np.inf, -1) if p_tree is None else p_tree.query(o)
        if dist > hole_m:
            fn += len(holes)
            continue
        marbles = _holes(proposal, p_nodes[int(j)], radius_m, interval_m, p_tree)
        filled = _fill(holes, marbles, hole_m)
        tp += filled
        fp += len(marbles) - filled
        fn += len(holes) - filled
    return PRF.from_counts(tp, tp + fp, tp + fn)
