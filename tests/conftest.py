"""Shared fixtures: the repository's sample data, and isolation of caches and MLflow stores."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data" / "samples"
SAT6_CSV = SAMPLES / "sat6-sample" / "kaggle-csv"
SAT6_TIFS = SAMPLES / "sat6-sample" / "tif-patches"
CONFIGS = ROOT / "configs"

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep CSV caches and MLflow stores out of the user's home and the repository."""
    monkeypatch.setenv("SATCNN_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working directory (where ``mlflow.db`` and ``runs/`` are created)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
