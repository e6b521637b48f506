"""APLS, junction and TOPO metrics on small graphs whose scores are worked out by hand."""

from __future__ import annotations

import networkx as nx
import pytest
import shapely

from satcnn.vector.apls import apls, control_graph
from satcnn.vector.topo import junction_metric, topo_metric


def graph(nodes: dict[str, tuple[float, float]], edges: list[tuple[str, str]]) -> nx.MultiGraph:
    """Straight-edged metric graph."""
    g = nx.MultiGraph()
    for name, (x, y) in nodes.items():
        g.add_node(name, x=x, y=y)
    for u, v in edges:
        line = shapely.LineString([nodes[u], nodes[v]])
        g.add_edge(u, v, geometry=line, length=line.length)
    return g


# A "T": A --100 m-- B --100 m-- C along the x axis, and B --100 m-- D to the north.
T_NODES = {"A": (0.0, 0.0), "B": (100.0, 0.0), "C": (200.0, 0.0), "D": (100.0, 100.0)}
T_EDGES = [("A", "B"), ("B", "C"), ("B", "D")]


def test_identical_graphs_score_one() -> None:
    t = graph(T_NODES, T_EDGES)
    result = apls(t, t)
    assert result.apls == 1.0
    assert result.truth_onto_proposal == result.proposal_onto_truth == 1.0
    assert result.routes_truth_onto_proposal == 12  # 4 control points, 4 * 3 ordered routes


def test_one_segment_removed_scores_what_the_definition_predicts() -> None:
    truth = graph(T_NODES, T_EDGES)
    proposal = graph({k: T_NODES[k] for k in "ABC"}, [("A", "B"), ("B", "C")])
    # Edges are straight, so the control points are the nodes alone.
    # truth -> proposal: A, B, C snap onto the proposal (distance 0); D is 100 m from it (> 4 m).
    #   from A: B (100 vs 100) 0, C (200 vs 200) 0, D missing 1
    #   from B: A 0, C 0, D 1;   from C: A 0, B 0, D 1
    #   from D (not snapped): 1 for each of A, B, C
    #   12 routes, sum of differences 6 -> C = 1 - 6/12 = 1/2
    # proposal -> truth: A, B, C all snap; all 6 routes have equal lengths -> C = 1
    # APLS = harmonic mean(1/2, 1) = 2 / (2 + 1) = 2/3
    result = apls(truth, proposal)
    assert result.truth_onto_proposal == pytest.approx(0.5)
    assert result.proposal_onto_truth == pytest.approx(1.0)
    assert result.routes_truth_onto_proposal == 12 and result.routes_proposal_onto_truth == 6
    assert result.apls == pytest.approx(2 / 3)


def test_longer_detour_scores_its_relative_length_difference() -> None:
    # Truth: A --100 m-- B. Proposal: A -> (50, 10) -> B, a kinked edge of 2 * sqrt(50^2 + 10^2) m.
    truth = graph({"A": (0.0, 0.0), "B": (100.0, 0.0)}, [("A", "B")])
    proposal = nx.MultiGraph()
    proposal.add_node("A", x=0.0, y=0.0)
    proposal.add_node("B", x=100.0, y=0.0)
    kinked = shapely.LineString([(0, 0), (50, 10), (100, 0)])
    proposal.add_edge("A", "B", geometry=kinked, length=kinked.length)
    detour = kinked.length  # 101.98 m
    # The kinked edge is "curved" (bbox diagonal 100.5 m vs length 102.0 m: 1.5 % > 1.2 %) and
    # longer than 50 m: npoints = len(arange(0, 101.98, 50)) + 1 = 4, so 2 midpoints at L/3, 2L/3.
    assert control_graph(proposal).number_of_nodes() == 4
    # truth -> proposal: A, B snap; routes A->B and B->A differ by (detour - 100) / 100 each.
    c_tp = 1 - (detour - 100) / 100
    # proposal -> truth: 4 control points P0=A, P1, P2, P3=B at 0, L/3, 2L/3, L along the kink;
    # P1 and P2 lie 6.67 m off the straight truth (more than the 4 m snap), so only A and B snap.
    p1_offset = 10 * (detour / 3) / (detour / 2)  # height of the point at L/3 on the kink
    assert p1_offset > 4
    # Routes from A and B: A->B, B->A (diff (detour-100)/detour each), A->P1, A->P2, B->P1, B->P2
    # (P1, P2 not snapped: 1 each); from P1 and P2 (not snapped): 1 for each of 3 targets.
    diffs = [2 * (detour - 100) / detour] + [1.0] * 4 + [1.0] * 6
    c_pt = 1 - sum(diffs) / 12
    result = apls(truth, proposal)
    assert result.truth_onto_proposal == pytest.approx(c_tp)
    assert result.proposal_onto_truth == pytest.approx(c_pt)
    assert result.apls == pytest.approx(2 / (1 / c_tp + 1 / c_pt))


def test_extra_degree_two_node_changes_nothing() -> None:
    """A node that only splits an edge snaps exactly onto the other graph: every route matches."""
    truth = graph(T_NODES, T_EDGES)
    split = graph({**T_NODES, "E": (150.0, 0.0)}, [("A", "B"), ("B", "E"), ("E", "C"), ("B", "D")])
    assert apls(truth, split).apls == pytest.approx(1.0)


def test_empty_proposal_scores_zero() -> None:
    assert apls(graph(T_NODES, T_EDGES), nx.MultiGraph()).apls == 0.0


def test_junction_precision_and_recall() -> None:
    # Truth junctions at B (100, 0) and F (300, 0); the proposal has one 3 m from B and one far away.
    truth = graph(
        {"A": (0, 0), "B": (100, 0), "D": (100, 100), "F": (300, 0), "E": (400, 0), "G": (300, 100)},
        [("A", "B"), ("B", "F"), ("B", "D"), ("F", "E"), ("F", "G")],
    )
    proposal = graph(
        {"a": (0, 0), "b": (103, 0), "d": (103, 100), "x": (200, 0), "y": (200, 50), "z": (250, 0)},
        [("a", "b"), ("b", "d"), ("b", "x"), ("x", "y"), ("x", "z")],
    )
    m = junction_metric(truth, proposal, match_m=10)
    assert (m.true_positives, m.proposed, m.truth) == (1, 2, 2)
    assert m.precision == m.recall == m.f1 == pytest.approx(0.5)


def test_topo_hand_computed() -> None:
    # Truth A(0,0) -- B(100,0); proposal A(0,0) -- M(50,0). Origins: both truth nodes.
    # Origin A: holes at A, B and 30, 60, 90 m from A (x = 0, 100, 30, 60, 90); the proposal's node
    #   nearest A is A itself, marbles at A, M and 30 m (x = 0, 50, 30): x=0 and x=30 fill holes,
    #   x=50 is 10 m from the nearest hole (> 5 m): TP 2, FP 1, FN 3.
    # Origin B: no proposal node within 5 m of B: its 5 holes are all missed, FN 5.
    # precision = 2 / 3, recall = 2 / (2 + 8) = 0.2
    truth = graph({"A": (0.0, 0.0), "B": (100.0, 0.0)}, [("A", "B")])
    proposal = graph({"A": (0.0, 0.0), "M": (50.0, 0.0)}, [("A", "M")])
    m = topo_metric(truth, proposal, radius_m=150, interval_m=30, hole_m=5, n_origins=2)
    assert (m.true_positives, m.proposed, m.truth) == (2, 3, 10)
    assert m.precision == pytest.approx(2 / 3) and m.recall == pytest.approx(0.2)
    same = topo_metric(truth, truth, n_origins=2)
    assert same.precision == same.recall == 1.0
