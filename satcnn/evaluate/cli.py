"""``satcnn evaluate KIND ...``: one subparser per kind of prediction, shared report options."""

from __future__ import annotations

import argparse
import json
import sys

__all__ = ["build_parser", "evaluate_main"]

EPILOG = """\
Examples:
  satcnn evaluate graph --pred roads.gpkg --truth centrelines.geojson --out report.json --csv report.csv
  satcnn evaluate graph --pred tile_prob.tif --truth centrelines.gpkg     (vectorises the raster first)

The report (JSON; one CSV row) holds APLS (SpaceNet definition), junction and TOPO precision,
recall and F1, and node/edge counts and lengths of both graphs. Without --out it goes to stdout.
"""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _add_report_options(p: argparse.ArgumentParser) -> None:
    """Options every kind shares."""
    p.add_argument("--pred", required=True, help="prediction file")
    p.add_argument("--truth", required=True, help="ground-truth file")
    p.add_argument("--out", default=None, help="JSON report to write (default: print it)")
    p.add_argument("--csv", default=None, help="also write the metrics as a one-row CSV")


def build_parser() -> argparse.ArgumentParser:
    """The ``satcnn evaluate`` argument parser."""
    p = argparse.ArgumentParser(
        prog="satcnn evaluate",
        description="Score predictions against the truth.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="kind", required=True)
    g = sub.add_parser(
        "graph",
        help="road graph (GPKG/GeoJSON/GeoParquet, or a road raster) vs centrelines or another graph",
    )
    _add_report_options(g)
    g.add_argument("--threshold", type=_positive, default=0.5, help="road probability for rasters (0.5)")
    g.add_argument("--snap-m", type=_positive, default=4.0, help="APLS snapping distance (default 4 m)")
    g.add_argument("--max-nodes", type=_positive_int, default=None, help="APLS control points per side")
    g.add_argument("--junction-m", type=_positive, default=10.0, help="junction match distance (10 m)")
    g.add_argument("--topo-radius-m", type=_positive, default=150.0, help="TOPO subgraph radius (150 m)")
    g.add_argument("--topo-interval-m", type=_positive, default=30.0, help="TOPO hole spacing (30 m)")
    g.add_argument("--topo-hole-m", type=_positive, default=5.0, help="TOPO hole size (5 m)")
    g.add_argument("--topo-origins", type=_positive_int, default=20, help="TOPO origins (20)")
    g.add_argument("--seed", type=int, default=0, help="seed for sampled nodes and origins (0)")
    return p


def evaluate_main(argv: list[str]) -> int:
    """Run ``satcnn evaluate``; 0 on success, 2 on usage errors (SatcnnError goes to the caller)."""
    args = build_parser().parse_args(argv)
    from satcnn.evaluate.graph import evaluate_graph, write_report

    report = evaluate_graph(
        args.pred,
        args.truth,
        threshold=args.threshold,
        snap_m=args.snap_m,
        max_nodes=args.max_nodes,
        junction_m=args.junction_m,
        topo_radius_m=args.topo_radius_m,
        topo_interval_m=args.topo_interval_m,
        topo_hole_m=args.topo_hole_m,
        topo_origins=args.topo_origins,
        seed=args.seed,
    )
    write_report(report, args.out, args.csv)
    if args.out is None:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        sys.stdout.write(
            f"APLS {report['apls']:.4f}, junction F1 {report['junction_f1']:.3f}, "
            f"TOPO F1 {report['topo_f1']:.3f}\nwrote {args.out}\n"
        )
        if args.csv:
            sys.stdout.write(f"wrote {args.csv}\n")
    return 0
