"""A fit stopped by a real signal in a real ``python -m satcnn fit`` process (issue 12, items 1 and 6).

SIGTERM/SIGINT: one line, exit 143/130, ``last.ckpt`` at the step reached, the MLflow run KILLED, and
a resume that continues the same run with no metric step logged twice. SIGKILL: the run is left
RUNNING until ``satcnn runs clean`` (or a resume) marks it KILLED.
"""

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
from tests.factories import CONFIGS, ROOT, SAT6_CSV

pytestmark = pytest.mark.slow  # every test here is an end-to-end run

FIT = [
    "fit",
    "--config",
    str(CONFIGS / "deepsat" / "sat6.yaml"),
    "--config",
    str(CONFIGS / "trainer" / "debug.yaml"),
    "--data.init_args.root",
    str(SAT6_CSV),
    "--data.init_args.augment",
    "false",
    "--trainer.limit_train_batches",
    "3",
    "--trainer.max_epochs",
    "4",
]


def _fit_signalled(
    workdir: Path, step: int, signum: int, extra: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a fit that sends itself ``signum`` once it reaches ``step`` (tests/fit_hooks.py)."""
    hook = [
        "--trainer.callbacks+=tests.fit_hooks.SignalAtStep",
        "--trainer.callbacks.init_args.step",
        str(step),
    ]
    hook += ["--trainer.callbacks.init_args.signum", str(int(signum))]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "satcnn", *FIT, *hook, *(extra or [])],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _the_run(workdir: Path) -> tuple[MlflowClient, str]:
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("deepsat-sat6")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])
    return client, run.info.run_id


def _satcnn_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("satcnn:")]


def test_sigterm_saves_the_step_marks_killed_and_resume_continues(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = _fit_signalled(workdir, step=5, signum=signal.SIGTERM)  # epoch 1, mid-epoch (3 steps/epoch)
    assert done.returncode == 143, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    (line,) = _satcnn_lines(done.stderr)
    assert line.startswith("satcnn: interrupted by SIGTERM at step 5;"), line
    assert "marked KILLED" in line and "--ckpt_path last" in line
    client, run_id = _the_run(workdir)
    assert client.get_run(run_id).info.status == "KILLED"
    last = next(workdir.glob(f"runs/*/{run_id}/checkpoints/last.ckpt"))
    assert str(last.resolve()) in line
    assert torch.load(last, weights_only=True)["global_step"] == 5  # the newest state, not the best
    assert [m.step for m in client.get_metric_history(run_id, "train_loss")] == [2]  # epoch 0 only
    assert main([*FIT, "--ckpt_path", "last"]) == 0  # in-process: continue to max_epochs 4 = 12 steps
    runs = client.search_runs([client.get_run(run_id).info.experiment_id])
    assert [r.info.run_id for r in runs] == [run_id]
    assert runs[0].info.status == "FINISHED"
    assert torch.load(last, weights_only=True)["global_step"] == 12
    for key in ("train_loss", "val_loss", "val_acc", "lr-AdamW"):
        steps = [m.step for m in client.get_metric_history(run_id, key)]
        assert len(steps) == len(set(steps)), (key, steps)  # no step logged twice
    # one value per epoch, across the interruption: steps 2, 5, 8, 11 (3 steps per epoch)
    assert sorted(m.step for m in client.get_metric_history(run_id, "train_loss")) == [2, 5, 8, 11]
    assert sorted(m.step for m in client.get_metric_history(run_id, "val_loss")) == [2, 5, 8, 11]


def test_sigint_is_ctrl_c_exit_130_one_line_and_killed(workdir: Path) -> None:
    done = _fit_signalled(workdir, step=2, signum=signal.SIGINT)
    assert done.returncode == 130, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "KeyboardInterrupt" not in done.stderr
    (line,) = _satcnn_lines(done.stderr)
    assert line.startswith("satcnn: interrupted by SIGINT at step 2;"), line
    client, run_id = _the_run(workdir)
    assert client.get_run(run_id).info.status == "KILLED"
    last = next(workdir.glob(f"runs/*/{run_id}/checkpoints/last.ckpt"))
    assert torch.load(last, weights_only=True)["global_step"] == 2


def test_sigkill_leaves_running_until_runs_clean(workdir: Path) -> None:
    done = _fit_signalled(workdir, step=2, signum=signal.SIGKILL)
    assert done.returncode == -signal.SIGKILL
    client, run_id = _the_run(workdir)
    assert client.get_run(run_id).info.status == "RUNNING"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cleaned = subprocess.run(
        [sys.executable, "-m", "satcnn", "runs", "clean"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
    )
    assert cleaned.returncode == 0, cleaned.stderr
    assert f"{run_id} (experiment" in cleaned.stdout and "marked KILLED: process" in cleaned.stdout
    assert client.get_run(run_id).info.status == "KILLED"


def test_resume_after_sigkill_marks_the_run_killed_and_continues_from_the_last_n_steps(
    workdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    done = _fit_signalled(workdir, step=5, signum=signal.SIGKILL, extra=["--last_every_n_steps", "2"])
    assert done.returncode == -signal.SIGKILL
    client, run_id = _the_run(workdir)
    assert client.get_run(run_id).info.status == "RUNNING"
    last = next(workdir.glob(f"runs/*/{run_id}/checkpoints/last.ckpt"))
    # refreshed at step 2, the epoch end (3) and step 4; without --last_every_n_steps it would be 3
    assert torch.load(last, weights_only=True)["global_step"] == 4
    with caplog.at_level("WARNING", logger="satcnn"):
        assert main([*FIT, "--ckpt_path", run_id]) == 0
    assert f"MLflow run {run_id} was left RUNNING by a process killed hard; marked it KILLED" in caplog.text
    runs = client.search_runs([client.get_run(run_id).info.experiment_id])
    assert [r.info.run_id for r in runs] == [run_id] and runs[0].info.status == "FINISHED"
    for key in ("train_loss", "val_loss"):
        steps = [m.step for m in client.get_metric_history(run_id, key)]
        assert sorted(steps) == [2, 5, 8, 11], (key, steps)  # epoch 0 logged once, then resumed at 4
