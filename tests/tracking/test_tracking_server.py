"""Training against a real ``mlflow server`` (MLFLOW_TRACKING_URI=http://...): run, artifacts, registry."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mlflow import MlflowClient

from satcnn.cli import main
from satcnn.inference.model_io import resolve_model_path
from tests.factories import CONFIGS, SAT6_CSV, as_terminal_job, free_port, wait_http


@pytest.mark.slow
def test_fit_against_a_tracking_server(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    server_dir = workdir / "server"
    server_dir.mkdir()
    cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--backend-store-uri", f"sqlite:///{server_dir / 'mlflow.db'}", "--workers", "1"]
    cmd += ["--serve-artifacts", "--artifacts-destination", str(server_dir / "artifacts")]
    server = subprocess.Popen(cmd, cwd=server_dir, env=dict(os.environ), preexec_fn=as_terminal_job)
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{uri}/health", server)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        fit = ["fit", "--config", str(CONFIGS / "deepsat" / "sat6.yaml"), "--config"]
        fit += [str(CONFIGS / "trainer" / "debug.yaml"), "--data.init_args.root", str(SAT6_CSV)]
        assert main([*fit, "--register", "sat6-server"]) == 0

        client = MlflowClient(uri, registry_uri=uri)
        experiment = client.get_experiment_by_name("deepsat-sat6")
        assert experiment is not None
        (run,) = client.search_runs([experiment.experiment_id])
        assert run.info.status == "FINISHED"
        assert len(client.get_metric_history(run.info.run_id, "val_acc")) == 2
        assert run.data.params["model.init_args.model"] == "deepsat_cnn"
        # artifacts went through the server into its artifact root, not into the workdir
        assert not (workdir / "mlruns").exists() and not (workdir / "mlflow.db").exists()
        assert list((server_dir / "artifacts").rglob("best.ckpt"))
        local, _, _ = resolve_model_path("models:/sat6-server@current", tracking_uri=uri)
        best = torch.load(Path(run.data.tags["satcnn.best_checkpoint"]), weights_only=True)["state_dict"]
        got = torch.load(local, weights_only=True)["state_dict"]
        assert all(torch.equal(got[k], best[k]) for k in best)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
