"""``satcnn evaluate KIND ...``: one subparser per kind of prediction, its flags from the kind's options."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from satcnn.evaluate.options import EvaluateClassesOptions, EvaluateGraphOptions, EvaluateRoadsOptions
from satcnn.flags import add_subcommand, command_parser, parse_subcommand, values
from satcnn.io.remote import as_path

__all__ = ["build_parser", "evaluate_main"]

EPILOG = """\
Examples:
  satcnn evaluate roads --pred out/ --truth scenes/masks/ --out-dir eval/roads
  satcnn evaluate roads --pred 'out/*.tif' --truth scenes/masks/ --out-dir eval/roads   (globs, list files)
  satcnn evaluate roads --pred out/tile.tif --truth centrelines.geojson --buffer-m 8 --out-dir eval/
  satcnn evaluate classes --pred out/naip.tif --truth labels/naip.tif --out-dir eval/landcover
  satcnn evaluate classes --pred maps/ --truth patches/ --out-dir eval/patches   (ROOT/<class>/*.tif)
  satcnn evaluate graph --pred roads.gpkg --truth centrelines.geojson --out report.json --csv report.csv
  satcnn evaluate graph --pred tile_prob.tif --truth centrelines.gpkg     (vectorises the raster first)
  satcnn evaluate graph --pred roads.gpkg --truth c.geojson --snap-m 3 --apls-interval-m 30

roads and classes write metrics.json, metrics.csv (per tile, then overall) and PNG figures into
--out-dir and log them as an MLflow run (experiment satcnn-evaluation) tagged with --inference-run
and --training-run; --no-track skips MLflow. graph's report (JSON; one CSV row) holds APLS
(SpaceNet definition), junction and TOPO precision, recall and F1, and node/edge counts and
lengths of both graphs, and the APLS settings beside APLS. Without --out it goes to stdout.
--pred of roads and classes takes what infer takes (files, folders, globs, list files) and picks
files by their output tags: of a probability and a mask of the same input, the probability.
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``satcnn evaluate`` argument parser."""
    p = command_parser(
        prog="satcnn evaluate",
        description="Score predictions against the truth.",
        epilog=EPILOG,
    )
    sub = p.add_subparsers(dest="kind", required=True)
    add_subcommand(
        sub,
        "graph",
        EvaluateGraphOptions,
        help="road graph (GPKG/GeoJSON/GeoParquet, or a road raster) vs centrelines or another graph",
    )
    add_subcommand(
        sub,
        "roads",
        EvaluateRoadsOptions,
        help="road probability/mask rasters vs truth rasters or centreline vectors",
    )
    add_subcommand(
        sub, "classes", EvaluateClassesOptions, help="class maps vs label rasters or labelled patch folders"
    )
    return p


def _run_raster_kind(options: EvaluateRoadsOptions | EvaluateClassesOptions) -> int:
    from satcnn.evaluate.tracking import INFERENCE_RUN_TAG, TRAINING_RUN_TAG, check_runs, log_evaluation

    links = {INFERENCE_RUN_TAG: options.inference_run, TRAINING_RUN_TAG: options.training_run}
    tags = {k: v for k, v in links.items() if v}
    parent = options.parent_run
    if options.track:  # a wrong run id fails before the evaluation is computed
        check_runs([*tags.values(), *([parent] if parent else [])], tracking_uri=options.tracking_uri)
    out_dir = Path(options.out_dir)
    if isinstance(options, EvaluateRoadsOptions):
        from satcnn.evaluate.masks import evaluate_roads

        kind = "roads"
        result = evaluate_roads(
            [as_path(p) for p in options.pred],
            [as_path(t) for t in options.truth],
            out_dir,
            threshold=options.threshold,
            rho=options.rho,
            buffer_m=options.buffer_m,
            figures=options.figures,
            images=[as_path(i) for i in options.images] if options.images else None,
            allow_other_mask_values=options.allow_other_mask_values,
        )
        keys: tuple[str, ...] = ("iou", "f1", "relaxed_precision", "relaxed_recall", "breakeven")
    else:
        from satcnn.evaluate.class_maps import evaluate_classes

        kind = "classes"
        result = evaluate_classes(
            [as_path(p) for p in options.pred],
            [as_path(t) for t in options.truth],
            out_dir,
            class_names=options.class_names,
        )
        keys = ("accuracy", "macro_precision", "macro_recall", "macro_f1")
    summary = ", ".join(f"{k} {result.metrics[k]:.4f}" for k in keys)
    sys.stdout.write(f"{kind}: {summary} over {len(result.per_tile)} tiles\nwrote {out_dir}\n")
    if options.track:
        run_id = log_evaluation(
            result,
            tracking_uri=options.tracking_uri,
            experiment=options.experiment,
            tags=tags,
            parent_run_id=parent,
        )
        sys.stdout.write(f"mlflow run id: {run_id}\n")
    return 0


def evaluate_main(argv: list[str]) -> int:
    """Run ``satcnn evaluate``; 0 on success, 2 on usage errors (SatcnnError goes to the caller)."""
    options = parse_subcommand(build_parser(), argv)
    if not isinstance(options, EvaluateGraphOptions):
        return _run_raster_kind(options)
    from satcnn.evaluate.graph import evaluate_graph, write_report

    report = evaluate_graph(options.pred, options.truth, **values(options, "pred", "truth", "out", "csv"))
    write_report(report, options.out, options.csv)
    if options.out is None:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        sys.stdout.write(
            f"APLS {report['apls']:.4f}, junction F1 {report['junction_f1']:.3f}, "
            f"TOPO F1 {report['topo_f1']:.3f}\nwrote {options.out}\n"
        )
        if options.csv:
            sys.stdout.write(f"wrote {options.csv}\n")
    return 0
