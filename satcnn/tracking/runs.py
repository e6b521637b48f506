"""Runs left RUNNING by a process killed hard (SIGKILL, out of memory): find them, mark them KILLED.

A fit records its process id and host in the run's tags (:func:`satcnn.tracking.logger.process_tags`).
A RUNNING run whose process on this host is gone can never end by itself.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any

from satcnn.tracking.logger import HOST_TAG, PID_TAG


@dataclass(frozen=True)
class StaleRun:
    """A RUNNING run and why it is (or is not) considered abandoned."""

    run_id: str
    experiment_id: str
    reason: str
    stale: bool


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def classify_run(run: Any, host: str) -> StaleRun:
    """Whether a RUNNING ``run`` was abandoned: its fit ran on ``host`` and its process is gone."""
    tags = run.data.tags
    info = run.info
    pid, run_host = tags.get(PID_TAG), tags.get(HOST_TAG)
    if pid is None or run_host is None:
        return StaleRun(info.run_id, info.experiment_id, "no satcnn process tags", False)
    if run_host != host:
        return StaleRun(info.run_id, info.experiment_id, f"ran on host {run_host}", False)
    if _alive(int(pid)):
        return StaleRun(info.run_id, info.experiment_id, f"process {pid} is still running", False)
    return StaleRun(info.run_id, info.experiment_id, f"process {pid} is gone", True)


def clean_runs(client: Any, dry_run: bool = False, include_unknown: bool = False) -> list[StaleRun]:
    """Mark KILLED every RUNNING run whose process is gone; return every RUNNING run examined.

    Args:
        client: an ``MlflowClient``.
        dry_run: only report.
        include_unknown: also mark runs with no process tags or from another host.
    """
    from mlflow.entities import ViewType

    host = socket.gethostname()
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    if not experiments:
        return []
    runs = client.search_runs(experiments, filter_string="attributes.status = 'RUNNING'", max_results=50000)
    found = []
    for run in runs:
        item = classify_run(run, host)
        if include_unknown and not item.stale and "still running" not in item.reason:
            item = StaleRun(item.run_id, item.experiment_id, item.reason, True)
        if item.stale and not dry_run:
            client.set_terminated(item.run_id, "KILLED")
        found.append(item)
    return found
