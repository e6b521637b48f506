"""``satcnn runs clean``: mark runs left RUNNING by a hard-killed fit as KILLED."""

from __future__ import annotations

import argparse
import sys

from satcnn.tracking.store import default_tracking_uri


def runs_main(argv: list[str]) -> int:
    """``satcnn runs clean [--dry-run] [--all]``: parse, then call :func:`satcnn.tracking.runs.clean_runs`."""
    parser = argparse.ArgumentParser(
        prog="satcnn runs", description="Housekeeping of the MLflow tracking store."
    )
    sub = parser.add_subparsers(dest="action", required=True)
    clean = sub.add_parser(
        "clean",
        help="mark KILLED the RUNNING runs whose fit process on this host is gone (killed hard)",
    )
    clean.add_argument(
        "--tracking-uri", default=None, help="store (default: $MLFLOW_TRACKING_URI or ./mlflow.db)"
    )
    clean.add_argument("--dry-run", action="store_true", help="only list what would be marked")
    clean.add_argument(
        "--all",
        action="store_true",
        help="also mark runs with no satcnn process tags or from another host (not those still running here)",
    )
    args = parser.parse_args(argv)
    from mlflow import MlflowClient

    from satcnn.tracking.runs import clean_runs

    client = MlflowClient(args.tracking_uri or default_tracking_uri())
    found = clean_runs(client, dry_run=args.dry_run, include_unknown=args.all)
    verb = "would mark" if args.dry_run else "marked"
    for item in found:
        action = f"{verb} KILLED" if item.stale else "left RUNNING"
        sys.stdout.write(f"{item.run_id} (experiment {item.experiment_id}): {action}: {item.reason}\n")
    sys.stdout.write(f"{sum(i.stale for i in found)} of {len(found)} RUNNING runs {verb} KILLED\n")
    return 0
