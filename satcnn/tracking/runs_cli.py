"""``satcnn runs clean``: mark runs left RUNNING by a hard-killed fit as KILLED."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from satcnn.flags import add_subcommand, command_parser, option, parse_subcommand
from satcnn.tracking.store import default_tracking_uri


@dataclass(frozen=True, kw_only=True)
class RunsCleanOptions:
    """``satcnn runs clean``: which RUNNING runs to mark KILLED."""

    tracking_uri: str | None = option(None, help="store (default: $MLFLOW_TRACKING_URI or ./mlflow.db)")
    dry_run: bool = option(False, help="only list what would be marked")
    all: bool = option(
        False,
        help="also mark runs with no satcnn process tags or from another host (not those still running here)",
    )


def runs_main(argv: list[str]) -> int:
    """``satcnn runs clean [--dry-run] [--all]``: parse, then call :func:`satcnn.tracking.runs.clean_runs`."""
    parser = command_parser(prog="satcnn runs", description="Housekeeping of the MLflow tracking store.")
    sub = parser.add_subparsers(dest="action", required=True)
    add_subcommand(
        sub,
        "clean",
        RunsCleanOptions,
        help="mark KILLED the RUNNING runs whose fit process on this host is gone (killed hard)",
    )
    options: RunsCleanOptions = parse_subcommand(parser, argv)
    from mlflow import MlflowClient

    from satcnn.tracking.runs import clean_runs

    client = MlflowClient(options.tracking_uri or default_tracking_uri())
    found = clean_runs(client, dry_run=options.dry_run, include_unknown=options.all)
    verb = "would mark" if options.dry_run else "marked"
    for item in found:
        action = f"{verb} KILLED" if item.stale else "left RUNNING"
        sys.stdout.write(f"{item.run_id} (experiment {item.experiment_id}): {action}: {item.reason}\n")
    sys.stdout.write(f"{sum(i.stale for i in found)} of {len(found)} RUNNING runs {verb} KILLED\n")
    return 0
