"""A fit's MLflow logger set up while another process holds the SQLite store locked (issue 12).

MLflow's store setup (engine, schema check) connected with sqlite3's default 5 s timeout and was
not retried, so a fit starting during a longer write by another process failed at once.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.factories import ROOT

LOCK_S = 10.0  # longer than sqlite3's default 5 s timeout
SETUP = """
import sys, time
import mlflow.store.tracking.sqlalchemy_store, mlflow.tracking  # imported before the lock is taken
from satcnn.tracking.logger import SatcnnMLFlowLogger
print("ready", flush=True)
sys.stdin.readline()  # the test holds the lock now
t = time.monotonic()
logger = SatcnnMLFlowLogger(experiment_name="locked", tracking_uri=sys.argv[1])
logger.experiment  # creates the experiment
print(f"{time.monotonic() - t:.1f}", flush=True)
"""


@pytest.mark.slow
def test_logger_setup_waits_for_a_store_locked_longer_than_sqlite_default(tmp_path: Path) -> None:
    db = tmp_path / "mlflow.db"
    uri = f"sqlite:///{db}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", SETUP, uri],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == "ready"
        with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as con:
            con.execute("BEGIN EXCLUSIVE")  # on a new, empty store: the setup must create its schema
            proc.stdin.write("go\n")
            proc.stdin.flush()
            time.sleep(LOCK_S)
            con.execute("COMMIT")
        out, err = proc.communicate(timeout=600)  # then it creates the schema: slow on a busy machine
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert float(out.strip()) >= LOCK_S - 1  # it waited for the lock, then set up
    with contextlib.closing(sqlite3.connect(db)) as con:
        assert con.execute("SELECT count(*) FROM experiments WHERE name = 'locked'").fetchone() == (1,)
