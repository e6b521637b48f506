"""Resuming a fit (``--ckpt_path last``, a checkpoint file or a run id) continues the same MLflow run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mlflow import MlflowClient

from satcnn.cli import main
from satcnn.lightning_cli import resolve_resume_checkpoint
from satcnn.models.checkpoint import RUN_KEY
from tests.factories import CONFIGS, SAT6_CSV

DEBUG = str(CONFIGS / "trainer" / "debug.yaml")
SAT6 = str(CONFIGS / "deepsat" / "sat6.yaml")
FIT = ["fit", "--config", SAT6, "--config", DEBUG, "--data.init_args.root", str(SAT6_CSV)]


def _fit(*extra: str, monkeypatch: pytest.MonkeyPatch, cache: Path) -> int:
    # A fresh CSV cache per fit: read_csv_images returns cache hits unreshaped (N, 3136) for now.
    cache.mkdir()
    monkeypatch.setenv("SATCNN_CACHE", str(cache))
    return main([*FIT, *extra])


@pytest.mark.slow
def test_resume_continues_the_run(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _fit(monkeypatch=monkeypatch, cache=workdir / "c1") == 0  # epochs 0-1
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    experiment_id = client.get_experiment_by_name("deepsat-sat6").experiment_id  # type: ignore[union-attr]
    (first,) = client.search_runs([experiment_id])
    run_id = first.info.run_id
    last = next(workdir.glob(f"runs/*/{run_id}/checkpoints/last.ckpt"))
    first_ckpt = torch.load(last, weights_only=True)
    assert first_ckpt[RUN_KEY]["run_id"] == run_id

    resume = ("--trainer.max_epochs", "3", "--ckpt_path", "last")
    assert _fit(*resume, monkeypatch=monkeypatch, cache=workdir / "c2") == 0  # epoch 2
    resume = ("--trainer.max_epochs", "4", "--ckpt_path", run_id)
    assert _fit(*resume, monkeypatch=monkeypatch, cache=workdir / "c3") == 0  # epoch 3

    runs = client.search_runs([experiment_id])
    assert [r.info.run_id for r in runs] == [run_id]
    assert runs[0].info.status == "FINISHED"
    for key in ("val_acc", "train_loss", "val_loss"):
        history = client.get_metric_history(run_id, key)
        steps = [m.step for m in history]
        assert len(history) == 4, (key, steps)
        assert steps == sorted(steps) and len(set(steps)) == 4, (key, steps)
    # Lightning logs "epoch" beside the train and the val metrics: the epochs go on 0-3
    assert sorted({m.value for m in client.get_metric_history(run_id, "epoch")}) == [0, 1, 2, 3]
    assert runs[0].data.params["trainer.max_epochs"] == "2"  # params keep the first value
    # the same checkpoint folder went on: twice the epochs, twice the optimizer steps
    assert torch.load(last, weights_only=True)["global_step"] == 2 * first_ckpt["global_step"] > 0


def test_resolve_resume_checkpoint(tmp_path: Path) -> None:
    assert resolve_resume_checkpoint("last", tmp_path) is None
    run = "0123456789abcdef0123456789abcdef"
    with pytest.raises(ValueError, match=r"no checkpoints/last\.ckpt of that MLflow run"):
        resolve_resume_checkpoint(run, tmp_path)
    with pytest.raises(FileNotFoundError, match=r"nope\.ckpt: no such file"):
        resolve_resume_checkpoint("nope.ckpt", tmp_path)
    ckpt = tmp_path / "1" / run / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"")
    assert resolve_resume_checkpoint("last", tmp_path) == ckpt
    assert resolve_resume_checkpoint(run, tmp_path) == ckpt
