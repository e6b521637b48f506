"""``satcnn pipeline run FILE [--set KEY=VALUE ...] [--out DIR]``: run or resume a pipeline."""

from __future__ import annotations

import argparse
import sys

__all__ = ["pipeline_main"]


def pipeline_main(argv: list[str]) -> int:
    """Parse ``satcnn pipeline ...`` and run the pipeline; prints where the results are."""
    parser = argparse.ArgumentParser(
        prog="satcnn pipeline",
        description="Declarative pipelines (pipelines/*.yaml): validate -> fit -> register -> infer -> "
        "evaluate -> report, each stage a nested MLflow run; unchanged stages are reused on rerun.",
    )
    sub = parser.add_subparsers(dest="action", required=True)
    run = sub.add_parser("run", help="run or resume a pipeline file")
    run.add_argument("file", help="pipeline file, e.g. pipelines/roads.yaml")
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting: <stage>.<key>=<yaml value> (e.g. fit.epochs=1) or a top-level key",
    )
    run.add_argument("--out", default=None, help="output folder (default: the file's `out`)")
    run.add_argument(
        "--tracking-uri", default=None, help="MLflow store (default: $MLFLOW_TRACKING_URI or ./mlflow.db)"
    )
    args = parser.parse_args(argv)

    from satcnn.pipeline.spec import load_spec

    overrides = list(args.overrides)
    if args.tracking_uri:
        overrides.append(f"tracking_uri={args.tracking_uri}")
    spec = load_spec(args.file, overrides, out=args.out)  # checked before MLflow is imported

    from satcnn.pipeline.runner import run_pipeline

    result = run_pipeline(spec)
    reused = f" (reused: {', '.join(result.reused)})" if result.reused else ""
    lines = [
        f"pipeline {spec.name}: done{reused}; parent MLflow run {result.parent_run_id}",
        f"report:  {result.report}  (and {result.report.with_suffix('.html').name})",
        f"outputs: {spec.out}",
        f"MLflow UI: python -m satcnn ui --backend-store-uri {result.tracking_uri}",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0
