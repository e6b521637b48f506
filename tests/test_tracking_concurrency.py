"""Four fits writing one SQLite store at once: four finished runs, no metric lost to "database is locked"."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.conftest import CONFIGS, ROOT, SAT6_CSV

RUNS = 4


@pytest.mark.slow
def test_concurrent_fits_share_one_sqlite_store(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'shared.db'}"
    args = ["fit", "--config", str(CONFIGS / "deepsat" / "sat6.yaml"), "--config"]
    args += [str(CONFIGS / "trainer" / "debug.yaml"), "--data.init_args.root", str(SAT6_CSV)]
    args += ["--trainer.max_epochs", "3", "--trainer.logger.init_args.experiment_name", "concurrent"]
    procs = []
    for i in range(RUNS):
        workdir = tmp_path / f"w{i}"
        workdir.mkdir()
        env = {**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_TRACKING_URI": store, "OMP_NUM_THREADS": "1"}
        env["SATCNN_CACHE"] = str(workdir / "cache")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "satcnn", *args, "--seed_everything", str(i)],
                cwd=workdir,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]

    client = MlflowClient(store)
    experiments = [e for e in client.search_experiments() if e.name == "concurrent"]
    assert len(experiments) == 1  # created once, although four runs raced to create it
    runs = client.search_runs([experiments[0].experiment_id])
    assert len(runs) == RUNS and {r.info.status for r in runs} == {"FINISHED"}
    for run in runs:
        for key in ("train_loss", "val_loss", "val_acc", "val_f1/water", "lr-AdamW"):
            steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
            assert len(steps) == 3 and len(set(steps)) == 3, (run.info.run_id, key, steps)
        assert run.data.params["trainer.max_epochs"] == "3"
        assert {a.path for a in client.list_artifacts(run.info.run_id, "checkpoints")} == {
            "checkpoints/best.ckpt",
            "checkpoints/last.ckpt",
        }
