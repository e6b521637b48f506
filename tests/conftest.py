"""Shared fixtures: the repository's sample data, and isolation of caches and MLflow stores."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from lightning_utilities.core.rank_zero import rank_zero_only

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data" / "samples"
SAT6_CSV = SAMPLES / "sat6-sample" / "kaggle-csv"
SAT6_TIFS = SAMPLES / "sat6-sample" / "tif-patches"
CONFIGS = ROOT / "configs"

torch.set_num_threads(min(2, os.cpu_count() or 1))


def as_terminal_job() -> None:
    """``preexec_fn`` for a child that a test stops with Ctrl-C (SIGINT), as a terminal's job.

    A foreground job takes Ctrl-C by default, but a test run started in the background by a shell
    without job control (``make test &``, ``nohup ... &``) ignores SIGINT, and children inherit
    that; ``satcnn ui`` then rightly keeps ignoring it, as under ``nohup``. This restores the
    default, so the tests check what a user's Ctrl-C does however the run was started.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Keep CSV caches and MLflow stores out of the user's home and the repository, and undo
    the process-wide state a Trainer leaves behind (environment variables, the rank that
    Lightning's rank-zero helpers read), so one test's launch layout never leaks into the next."""
    monkeypatch.setenv("SATCNN_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    environ = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(environ)
    rank_zero_only.rank = 0  # type: ignore[attr-defined]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working directory (where ``mlflow.db`` and ``runs/`` are created)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
