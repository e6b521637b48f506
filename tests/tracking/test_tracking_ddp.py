"""Two DDP processes (CPU, gloo) are tracked as one MLflow run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.factories import CONFIGS, ROOT, SAT6_CSV


@pytest.mark.ddp
@pytest.mark.slow
def test_ddp_fit_is_one_mlflow_run(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "SATCNN_CACHE": str(tmp_path / "c")}
    env.pop("MLFLOW_TRACKING_URI", None)
    args = ["fit", "--config", str(CONFIGS / "deepsat" / "sat6.yaml"), "--config"]
    args += [str(CONFIGS / "trainer" / "debug.yaml"), "--data.init_args.root", str(SAT6_CSV)]
    args += ["--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.accelerator", "cpu"]
    out = subprocess.run(
        [sys.executable, "-m", "satcnn", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count("mlflow run id:") == 1  # one summary, from rank 0

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("deepsat-sat6")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    for key in ("val_acc", "val_loss", "train_loss", "val_f1/water"):
        steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
        # debug overlay: 2 epochs, one value each
        assert len(steps) == 2 and len(set(steps)) == 2, (key, steps)
    assert run.data.params["trainer.strategy"] == "ddp" and run.data.params["trainer.devices"] == "2"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "checkpoints", "figures"} <= artifacts
    # the best model: one MLflow 3 logged model, from rank 0 only, linked to this run
    (model,) = client.search_logged_models([experiment.experiment_id])
    assert model.source_run_id == run.info.run_id
    # only rank 0 wrote checkpoints, into the run's folder
    ckpts = list(tmp_path.glob("runs/*/*/checkpoints/*.ckpt"))
    assert ckpts and {p.parent.parent.name for p in ckpts} == {run.info.run_id}
