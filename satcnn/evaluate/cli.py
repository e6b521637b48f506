"""``satcnn evaluate KIND ...``: one subparser per kind of prediction, shared report options."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from satcnn.io.road_mask import parse_threshold

__all__ = ["build_parser", "evaluate_main"]

EPILOG = """\
Examples:
  satcnn evaluate roads --pred out/ --truth scenes/masks/ --out-dir eval/roads
  satcnn evaluate roads --pred out/tile.tif --truth centrelines.geojson --buffer-m 8 --out-dir eval/
  satcnn evaluate classes --pred out/naip.tif --truth labels/naip.tif --out-dir eval/landcover
  satcnn evaluate classes --pred maps/ --truth patches/ --out-dir eval/patches   (ROOT/<class>/*.tif)
  satcnn evaluate graph --pred roads.gpkg --truth centrelines.geojson --out report.json --csv report.csv
  satcnn evaluate graph --pred tile_prob.tif --truth centrelines.gpkg     (vectorises the raster first)

roads and classes write metrics.json, metrics.csv (per tile, then overall) and PNG figures into
--out-dir and log them as an MLflow run (experiment satcnn-evaluation) tagged with --inference-run
and --training-run; --no-track skips MLflow. graph's report (JSON; one CSV row) holds APLS
(SpaceNet definition), junction and TOPO precision, recall and F1, and node/edge counts and
lengths of both graphs. Without --out it goes to stdout.
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
    g.add_argument(
        "--threshold",
        type=parse_threshold,
        default=0.5,
        help="raster inputs: road where probability >= threshold, in [0, 1] (0.5)",
    )
    g.add_argument("--snap-m", type=_positive, default=4.0, help="APLS snapping distance (default 4 m)")
    g.add_argument("--max-nodes", type=_positive_int, default=None, help="APLS control points per side")
    g.add_argument("--junction-m", type=_positive, default=10.0, help="junction match distance (10 m)")
    g.add_argument("--topo-radius-m", type=_positive, default=150.0, help="TOPO subgraph radius (150 m)")
    g.add_argument("--topo-interval-m", type=_positive, default=30.0, help="TOPO hole spacing (30 m)")
    g.add_argument("--topo-hole-m", type=_positive, default=5.0, help="TOPO hole size (5 m)")
    g.add_argument("--topo-origins", type=_positive_int, default=20, help="TOPO origins (20)")
    g.add_argument("--seed", type=int, default=0, help="seed for sampled nodes and origins (0)")
    _add_raster_kinds(sub)
    return p


def _add_tracking_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--tracking-uri", default=None, help="MLflow store (default $MLFLOW_TRACKING_URI or ./mlflow.db)"
    )
    p.add_argument("--experiment", default="satcnn-evaluation", help="MLflow experiment (satcnn-evaluation)")
    p.add_argument("--inference-run", default=None, help="MLflow run id of the inference that wrote --pred")
    p.add_argument("--training-run", default=None, help="MLflow run id of the model's training")
    p.add_argument("--parent-run", default=None, help="nest the evaluation run under this MLflow run")
    p.add_argument("--no-track", action="store_true", help="do not log the evaluation to MLflow")


def _add_raster_kinds(sub: Any) -> None:
    r = sub.add_parser("roads", help="road probability/mask rasters vs truth rasters or centreline vectors")
    r.add_argument("--pred", nargs="+", required=True, help="prediction rasters or folders of them")
    r.add_argument(
        "--truth",
        nargs="+",
        required=True,
        help="truth masks (or folders), or centreline vectors; one per --pred",
    )
    r.add_argument("--out-dir", required=True, help="folder for metrics.json, metrics.csv and figures")
    r.add_argument(
        "--threshold",
        type=parse_threshold,
        default=0.5,
        help="road where probability >= threshold, in [0, 1] (0.5)",
    )
    r.add_argument("--rho", type=_non_negative_int, default=3, help="relaxed metrics slack in pixels (3)")
    r.add_argument("--buffer-m", type=_positive, default=None, help="road width in metres for vector truth")
    r.add_argument(
        "--allow-other-mask-values",
        action="store_true",
        help="read every non-zero truth value as road (default: refuse values other than 0, 1, 255)",
    )
    r.add_argument("--figures", type=_non_negative_int, default=8, help="per-tile figures at most (8)")
    r.add_argument(
        "--images", nargs="+", default=None, help="input rasters (or folders), drawn in the figures"
    )
    _add_tracking_options(r)
    c = sub.add_parser("classes", help="class maps vs label rasters or labelled patch folders")
    c.add_argument("--pred", nargs="+", required=True, help="class-map rasters or folders of them")
    c.add_argument(
        "--truth",
        nargs="+",
        required=True,
        help="label rasters (one per --pred) or one ROOT/<class>/*.tif folder",
    )
    c.add_argument("--out-dir", required=True, help="folder for metrics.json, metrics.csv and figures")
    c.add_argument("--classes", default=None, help="comma-separated class names (default: the maps' tags)")
    _add_tracking_options(c)


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _run_raster_kind(args: argparse.Namespace) -> int:
    from satcnn.evaluate.tracking import INFERENCE_RUN_TAG, TRAINING_RUN_TAG, check_runs, log_evaluation

    links = {INFERENCE_RUN_TAG: args.inference_run, TRAINING_RUN_TAG: args.training_run}
    tags = {k: v for k, v in links.items() if v}
    if not args.no_track:  # a wrong run id fails before the evaluation is computed
        check_runs(
            [*tags.values(), *([args.parent_run] if args.parent_run else [])], tracking_uri=args.tracking_uri
        )
    out_dir = Path(args.out_dir)
    if args.kind == "roads":
        from satcnn.evaluate.masks import evaluate_roads

        result = evaluate_roads(
            [Path(p) for p in args.pred],
            [Path(t) for t in args.truth],
            out_dir,
            threshold=args.threshold,
            rho=args.rho,
            buffer_m=args.buffer_m,
            figures=args.figures,
            images=[Path(i) for i in args.images] if args.images else None,
            allow_other_mask_values=args.allow_other_mask_values,
        )
        keys: tuple[str, ...] = ("iou", "f1", "relaxed_precision", "relaxed_recall", "breakeven")
    else:
        from satcnn.evaluate.class_maps import evaluate_classes

        names = [n.strip() for n in args.classes.split(",")] if args.classes else None
        result = evaluate_classes(
            [Path(p) for p in args.pred], [Path(t) for t in args.truth], out_dir, class_names=names
        )
        keys = ("accuracy", "macro_precision", "macro_recall", "macro_f1")
    summary = ", ".join(f"{k} {result.metrics[k]:.4f}" for k in keys)
    sys.stdout.write(f"{args.kind}: {summary} over {len(result.per_tile)} tiles\nwrote {out_dir}\n")
    if not args.no_track:
        run_id = log_evaluation(
            result,
            tracking_uri=args.tracking_uri,
            experiment=args.experiment,
            tags=tags,
            parent_run_id=args.parent_run,
        )
        sys.stdout.write(f"mlflow run id: {run_id}\n")
    return 0


def evaluate_main(argv: list[str]) -> int:
    """Run ``satcnn evaluate``; 0 on success, 2 on usage errors (SatcnnError goes to the caller)."""
    args = build_parser().parse_args(argv)
    if args.kind in ("roads", "classes"):
        return _run_raster_kind(args)
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
