"""Tiny fits through ``satcnn.cli.main`` whose outcome several tests read back."""

from __future__ import annotations

import contextlib
import io
import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from lightning_utilities.core.rank_zero import rank_zero_only

from satcnn.cli import main
from tests.factories.paths import DEBUG, SAT6, SAT6_CSV

REGISTERED = "sat6-classifier"


@dataclass(frozen=True)
class TrackedFit:
    """The outcome of one ``satcnn fit`` of SAT-6 on the sample rows (debug overlay: 2 epochs).

    Attributes:
        workdir: Its working directory: ``mlflow.db`` and ``runs/``.
        code: ``main``'s exit status.
        stdout: What it printed.
        monitors: Names of the system-metrics threads still alive right after it returned.
    """

    workdir: Path
    code: int
    stdout: str
    monitors: list[str]


def tracked_sat6_fit(workdir: Path, cache: Path) -> TrackedFit:
    """Fit in ``workdir`` with test metrics, a registered model (``REGISTERED``) and system metrics
    every 0.2 s; the environment, working directory and Lightning's rank are restored after."""
    args = ["fit", "--config", SAT6, "--config", DEBUG, "--data.init_args.root", str(SAT6_CSV)]
    args += ["--test_after_fit", "true", "--register", REGISTERED, "--system_metrics_interval", "0.2"]
    environ, cwd, out = dict(os.environ), Path.cwd(), io.StringIO()
    os.environ["SATCNN_CACHE"] = str(cache)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.chdir(workdir)
    try:
        with contextlib.redirect_stdout(out):
            code = main(args)
        monitors = [t.name for t in threading.enumerate() if t.name == "SystemMetricsMonitor"]
    finally:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(environ)
        rank_zero_only.rank = 0  # type: ignore[attr-defined]
    return TrackedFit(workdir, code, out.getvalue(), monitors)


def copy_store(src: Path, dst: Path) -> Path:
    """Copy the SQLite store ``src`` to ``dst`` (SQLite's online backup: consistent while open).

    The runs' artifacts stay where they are (their locations are absolute); what is written to the
    copy (runs, registered models) does not reach ``src``.
    """
    with (
        contextlib.closing(sqlite3.connect(src)) as source,
        contextlib.closing(sqlite3.connect(dst)) as target,
    ):
        source.backup(target)
    return dst
