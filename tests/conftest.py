"""Shared fixtures: the session's one tiny tracked fit, and isolation of caches and MLflow stores."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from lightning_utilities.core.rank_zero import rank_zero_only

from tests.factories.fits import TrackedFit, tracked_sat6_fit

# Under pytest-xdist (`make test` runs two workers) each worker takes its share of the cores, so the
# workers' in-process torch work does not oversubscribe them; subprocesses keep torch's default.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1) // _WORKERS))


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


@pytest.fixture(scope="session")
def shared_fit(tmp_path_factory: pytest.TempPathFactory) -> TrackedFit:
    """One tiny tracked SAT-6 fit for the session (``tests.factories.fits.tracked_sat6_fit``), for
    tests that only read what it recorded; tests that write to its store use a ``copy_store``."""
    cache = tmp_path_factory.mktemp("shared-fit-cache")
    return tracked_sat6_fit(tmp_path_factory.mktemp("shared-fit"), cache)
