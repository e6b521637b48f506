"""Jobs on several machines log to one ``mlflow server`` backed by PostgreSQL (docs/scaling.md).

A 2-rank DDP fit and a ``satcnn infer`` job write to the server at once; everything each logged
is read back from it. PostgreSQL comes from ``make system-deps``: where it is missing, the test
fails (CI installs it), it never skips.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.factories import CONFIGS, NAIP, ROOT, SAT6_CSV, crop, write_checkpoint
from tests.factories.postgres import TrackingServer, mlflow_server, postgres_cluster

FIT_EXPERIMENT = "deepsat-sat6"  # configs/deepsat/sat6.yaml


@pytest.fixture
def tracking_server(tmp_path: Path) -> Iterator[TrackingServer]:
    """A throwaway PostgreSQL cluster with an ``mlflow server`` on it; both stopped after the test."""
    with postgres_cluster() as pg, mlflow_server(pg.create_database("mlflow"), tmp_path) as server:
        yield server


@dataclass
class Job:
    """A ``python -m satcnn`` command run in its own folder, its output in ``<folder>.log``."""

    name: str
    args: list[str]
    cwd: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.cwd.with_suffix(".log")

    def start(self, env: dict[str, str]) -> None:
        self.cwd.mkdir(parents=True, exist_ok=True)
        with self.log.open("w") as out:  # a file, not a pipe: a chatty job never blocks on a full pipe
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "satcnn", *self.args],
                cwd=self.cwd,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: DDP's second rank is stopped with it
            )

    def wait(self, deadline: float) -> None:
        assert self.proc is not None
        code = self.proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        assert code == 0, f"{self.name} exited with {code}:\n{self.log.read_text()[-3000:]}"

    def stop(self) -> None:
        """Kill the job's process group if the test ends while it runs."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def _wait_for_running_run(client: MlflowClient, experiment: str, job: Job, timeout: float = 240) -> None:
    """Wait until ``experiment`` holds a RUNNING run (the fit is logging); fail if ``job`` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert job.proc is not None
        if job.proc.poll() is not None:
            raise AssertionError(
                f"{job.name} exited with {job.proc.returncode}:\n{job.log.read_text()[-3000:]}"
            )
        exp = client.get_experiment_by_name(experiment)
        if exp is not None and client.search_runs([exp.experiment_id], "attributes.status = 'RUNNING'"):
            return
        time.sleep(0.5)
    raise AssertionError(f"no running run in {experiment} after {timeout} s")


def _earlier_training_run(client: MlflowClient, tmp_path: Path) -> str:
    """A finished training run on the server whose ``checkpoints/best.ckpt`` the inference job runs."""
    ckpt = write_checkpoint(tmp_path / "earlier" / "best.ckpt")
    exp_id = client.create_experiment("deepsat-sat6-earlier")
    run_id = str(client.create_run(exp_id, run_name="earlier-fit").info.run_id)
    client.log_artifact(run_id, str(ckpt), "checkpoints")
    client.set_terminated(run_id, "FINISHED")
    return run_id


@pytest.mark.ddp
@pytest.mark.slow
def test_ddp_fit_local_and_ray_inference_log_to_a_postgres_backed_server_at_once(
    tracking_server: TrackingServer, tmp_path: Path
) -> None:
    uri = tracking_server.uri
    client = MlflowClient(uri)
    model_run = _earlier_training_run(client, tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "SATCNN_CACHE": str(tmp_path / "c")}
    env |= {"MLFLOW_TRACKING_URI": uri, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}

    fit = ["fit", "--config", str(CONFIGS / "deepsat" / "sat6.yaml"), "--config"]
    fit += [str(CONFIGS / "trainer" / "debug.yaml"), "--data.init_args.root", str(SAT6_CSV)]
    fit += ["--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.accelerator", "cpu"]
    tile = crop(NAIP, tmp_path / "tile.tif", 200)
    infer = ["infer", "--model", f"runs:/{model_run}", "--input", str(tile), "--output", "out"]
    infer += ["--stride", "4", "--no-progress"]
    trainer = Job("fit", fit, tmp_path / "fit")
    # the writers that join while the fit's run is open: one process, and a Ray job (a local cluster)
    writers = [
        Job("infer", infer, tmp_path / "infer"),
        Job("ray", [*infer, "--engine", "ray"], tmp_path / "ray"),
    ]
    jobs = [trainer, *writers]
    try:
        trainer.start(env)
        _wait_for_running_run(client, FIT_EXPERIMENT, trainer)
        for job in writers:
            job.start(env)
        deadline = time.monotonic() + 600
        for job in jobs:
            job.wait(deadline)
    finally:
        for job in jobs:
            job.stop()

    # the fit: one run with every epoch's metrics, its params, artifacts and model, all on the server
    experiment = client.get_experiment_by_name(FIT_EXPERIMENT)
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    for key in ("val_acc", "val_loss", "train_loss", "val_f1/water"):
        steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
        assert len(steps) == 2 and len(set(steps)) == 2, (key, steps)  # debug overlay: 2 epochs
    assert run.data.params["trainer.strategy"] == "ddp" and run.data.params["trainer.devices"] == "2"
    assert run.data.params["model.init_args.model"] == "deepsat_cnn"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "checkpoints", "figures"} <= artifacts
    (model,) = client.search_logged_models([experiment.experiment_id])
    assert model.source_run_id == run.info.run_id
    # the artifacts went through the server into its artifacts destination, no store beside the jobs
    assert list(tracking_server.artifacts.rglob("best.ckpt"))
    for job in jobs:
        assert not (job.cwd / "mlflow.db").exists() and not (job.cwd / "mlruns").exists()

    # each inference job: one run, linked to the training run of its model, with its metrics and records
    inference = client.get_experiment_by_name("satcnn-inference")
    assert inference is not None
    infer_runs = client.search_runs([inference.experiment_id])
    assert len(infer_runs) == len(writers)
    assert sorted(r.data.params.get("engine", "local") for r in infer_runs) == ["local", "ray"]
    for infer_run in infer_runs:
        assert infer_run.info.status == "FINISHED"
        assert infer_run.data.tags["satcnn.source_run_id"] == model_run
        assert infer_run.data.params["model_uri"] == f"runs:/{model_run}"
        assert infer_run.data.metrics["tiles"] == 1 and infer_run.data.metrics["megapixels_per_s"] > 0
        records = {a.path for a in client.list_artifacts(infer_run.info.run_id)}
        assert {"manifest.json", "class_fractions.csv"} <= records
    for job in writers:
        assert (job.cwd / "out" / "tile.tif").is_file()
