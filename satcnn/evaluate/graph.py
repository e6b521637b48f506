"""Road graph metrics for ``satcnn evaluate graph``: APLS, junction and TOPO precision/recall.

Either side may be a vector file (GeoJSON, GeoPackage, GeoParquet; for a GeoPackage with a
``lines`` layer, that layer) or a road probability/mask raster, which is vectorised first with
:func:`satcnn.vector.roads.extract_road_graph`. Both graphs are built in the truth's metric CRS
(its own when projected in metres, else its UTM zone).
"""

from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path
from typing import Any

import geopandas as gpd
import networkx as nx
import pyogrio
from pyproj import CRS

from satcnn.errors import DataFormatError, require_file
from satcnn.io.atomic import write_text_atomic
from satcnn.io.road_mask import check_threshold
from satcnn.vector.apls import apls
from satcnn.vector.layers import read_vector
from satcnn.vector.lines import graph_from_lines, metric_crs
from satcnn.vector.roads import extract_road_graph
from satcnn.vector.topo import junction_metric, topo_metric

__all__ = ["RASTER_SUFFIXES", "evaluate_graph", "load_graph", "write_report"]

log = logging.getLogger(__name__)

RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".img")


def _lines_frame(path: str | Path, threshold: float, allow_no_crs: bool = False) -> gpd.GeoDataFrame:
    p = require_file(path, "road graph")
    if p.suffix.lower() in RASTER_SUFFIXES:
        lines, _ = extract_road_graph(p, threshold=threshold, allow_no_crs=allow_no_crs).frames()
        return lines
    layer = None
    if p.suffix.lower() == ".gpkg":
        try:
            names = [str(n) for n in pyogrio.list_layers(p)[:, 0]]
        except Exception:  # unreadable: let read_vector report it
            names = []
        layer = "lines" if "lines" in names else None
    return read_vector(p, layer=layer, allow_no_crs=allow_no_crs)


def load_graph(
    path: str | Path, crs: CRS | None = None, *, threshold: float = 0.5, allow_no_crs: bool = False
) -> tuple[nx.MultiGraph, CRS | None]:
    """Read a road graph (vector file or road raster) in metric CRS ``crs`` (default: its own).

    With ``allow_no_crs``, a file without a CRS gives a graph on its pixel grid (units taken as
    metres) and ``None`` for the CRS.

    Raises:
        InputFileNotFoundError: the file does not exist.
        DataFormatError, RasterError: it cannot be read as lines or as a road raster.
    """
    lines = _lines_frame(path, threshold, allow_no_crs)
    if lines.crs is None:
        return graph_from_lines(lines, None, name=str(path)), None
    crs = crs or metric_crs(lines)
    return graph_from_lines(lines, crs, name=str(path)), crs


def _length(graph: nx.MultiGraph) -> float:
    return float(sum(d["length"] for _, _, d in graph.edges(data=True)))


def evaluate_graph(
    prediction: str | Path,
    truth: str | Path,
    *,
    threshold: float = 0.5,
    snap_m: float = 4.0,
    apls_interval_m: float = 50.0,
    apls_curved_eps: float = 0.012,
    apls_min_path_m: float = 10.0,
    max_nodes: int | None = None,
    junction_m: float = 10.0,
    topo_radius_m: float = 150.0,
    topo_interval_m: float = 30.0,
    topo_hole_m: float = 5.0,
    topo_origins: int = 20,
    seed: int = 0,
    allow_no_crs: bool = False,
) -> dict[str, Any]:
    """Score ``prediction`` against ``truth``; returns a flat report (metrics, counts, settings).

    Args:
        prediction: Predicted road graph: vector file or road raster.
        truth: Ground truth: centreline file, graph file or road raster.
        threshold: Raster inputs: road where the probability is at or above this, in [0, 1] (the
            road rule of :mod:`satcnn.io.road_mask`, as ``satcnn vectorize roads``).
        snap_m: APLS snapping distance.
        apls_interval_m, apls_curved_eps, apls_min_path_m: APLS control-point spacing, the
            straightness below which an edge gets none, and the shortest route compared
            (:func:`satcnn.vector.apls.apls`).
        max_nodes: APLS control points per half at most (sampled with ``seed``); None: all.
        junction_m: Junction matching distance.
        topo_radius_m, topo_interval_m, topo_hole_m, topo_origins: TOPO settings.
        seed: Seed for sampled control points and TOPO origins.
        allow_no_crs: Accept inputs without a CRS (both must lack one: one pixel grid, its units
            taken as metres).

    Raises:
        ConfigError: ``threshold`` is outside [0, 1].
    """
    check_threshold("threshold", threshold)
    truth_graph, crs = load_graph(truth, threshold=threshold, allow_no_crs=allow_no_crs)
    pred_graph, pred_crs = load_graph(prediction, crs, threshold=threshold, allow_no_crs=allow_no_crs)
    if (crs is None) != (pred_crs is None):
        without = truth if crs is None else prediction
        raise DataFormatError("has no CRS but the other graph has one: both must share one grid", without)
    apls_settings: dict[str, Any] = {
        "snap_m": snap_m,
        "interval_m": apls_interval_m,
        "curved_eps": apls_curved_eps,
        "min_path_m": apls_min_path_m,
        "max_nodes": max_nodes,
    }
    a = apls(truth_graph, pred_graph, **apls_settings, seed=seed)
    j = junction_metric(truth_graph, pred_graph, match_m=junction_m)
    t = topo_metric(
        truth_graph,
        pred_graph,
        radius_m=topo_radius_m,
        interval_m=topo_interval_m,
        hole_m=topo_hole_m,
        n_origins=topo_origins,
        seed=seed,
    )
    report: dict[str, Any] = {
        "kind": "graph",
        "prediction": str(prediction),
        "truth": str(truth),
        "crs": crs.to_string() if crs is not None else "none (pixel grid, units taken as metres)",
        "apls": a.apls,
        "apls_truth_onto_prediction": a.truth_onto_proposal,
        "apls_prediction_onto_truth": a.proposal_onto_truth,
        "apls_routes": a.routes_truth_onto_proposal + a.routes_proposal_onto_truth,
        **{f"apls_{k}": v for k, v in apls_settings.items()},  # APLS moves with them: beside it
        "junction_precision": j.precision,
        "junction_recall": j.recall,
        "junction_f1": j.f1,
        "topo_precision": t.precision,
        "topo_recall": t.recall,
        "topo_f1": t.f1,
        "truth_nodes": truth_graph.number_of_nodes(),
        "truth_edges": truth_graph.number_of_edges(),
        "truth_length_m": _length(truth_graph),
        "prediction_nodes": pred_graph.number_of_nodes(),
        "prediction_edges": pred_graph.number_of_edges(),
        "prediction_length_m": _length(pred_graph),
    }
    report["settings"] = {
        "threshold": threshold,
        **{f"apls_{k}" if k != "snap_m" else k: v for k, v in apls_settings.items()},
        "junction_m": junction_m,
        "topo_radius_m": topo_radius_m,
        "topo_interval_m": topo_interval_m,
        "topo_hole_m": topo_hole_m,
        "topo_origins": topo_origins,
        "seed": seed,
    }
    log.info("APLS %.4f, junction F1 %.3f, TOPO F1 %.3f", a.apls, j.f1, t.f1)
    return report


def write_report(report: dict[str, Any], json_path: str | Path | None, csv_path: str | Path | None) -> None:
    """Write the report as JSON and/or as a one-row CSV (settings left out), atomically."""
    if json_path is not None:
        write_text_atomic(json_path, json.dumps(report, indent=2) + "\n")
    if csv_path is not None:
        row = {k: v for k, v in report.items() if not isinstance(v, dict)}
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(row))
        writer.writeheader()
        writer.writerow(row)
        write_text_atomic(csv_path, buf.getvalue())
