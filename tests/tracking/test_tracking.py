"""Every fit is one MLflow run with its config, metrics, checkpoint and figures (read back via MLflow)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from mlflow import MlflowClient
from mlflow.artifacts import download_artifacts

from satcnn.cli import main
from satcnn.models.checkpoint import CHECKPOINT_KEY
from tests.factories import CONFIGS, SAT6_CSV
from tests.factories.fits import TrackedFit

SAT6 = str(CONFIGS / "deepsat" / "sat6.yaml")


def _only_run(workdir: Path):  # type: ignore[no-untyped-def]
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("deepsat-sat6")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    return client, runs[0]


def test_fit_is_tracked_in_mlflow(tracked_fit: TrackedFit) -> None:
    """The shared fit (``--test_after_fit true``; also ``--register``, read by test_registry.py)."""
    assert tracked_fit.code == 0
    client, run = _only_run(tracked_fit.workdir)
    assert run.info.status == "FINISHED"
    run_id = run.info.run_id
    # metrics per epoch (debug overlay: 2 epochs) and the test metrics of the same run
    assert [m.step for m in client.get_metric_history(run_id, "train_loss")] != []
    assert len(client.get_metric_history(run_id, "val_acc")) == 2
    assert "test_acc" in run.data.metrics and "val_f1/water" in run.data.metrics
    # the resolved config, as flat params and as an artifact
    assert run.data.params["model.init_args.model"] == "deepsat_cnn"
    assert run.data.params["trainer.max_epochs"] == "2"
    config = Path(
        download_artifacts(
            run_id=run_id, artifact_path="config.yaml", tracking_uri=client._tracking_client.tracking_uri
        )
    ).read_text()
    assert "class_path: satcnn.tasks.ClassificationTask" in config
    artifacts = {a.path for a in client.list_artifacts(run_id, "figures")}
    assert {"figures/confusion_matrix_val.png", "figures/confusion_matrix_test.png"} <= artifacts
    # the best checkpoint: a safe-to-load file that rebuilds the model without the config
    ckpt_path = download_artifacts(
        run_id=run_id,
        artifact_path="checkpoints/best.ckpt",
        tracking_uri=client._tracking_client.tracking_uri,
    )
    ckpt = torch.load(ckpt_path, weights_only=True, map_location="cpu")
    meta = ckpt[CHECKPOINT_KEY]
    assert meta["model"]["name"] == "deepsat_cnn" and meta["classes"][-1] == "water"
    assert meta["bands"] == ["red", "green", "blue", "nir"] and len(meta["mean"]) == 4
    assert 50 < meta["mean"][3] < 200  # NIR mean in raw DN, from the training split
    # the summary printed for the user names the run and the checkpoint
    out = tracked_fit.stdout
    assert re.search(r"^test accuracy: [01]\.\d{4}$", out, re.M)
    assert f"mlflow run id: {run_id}" in out


@pytest.mark.slow
def test_sat6_fit_on_real_samples_beats_chance(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The shipped SAT-6 config on the real sample rows: test accuracy far above chance.

    Majority class (water) is 65/200 = 0.33 of the test rows; an untrained model sits near 1/6.
    Measured: 0.915 (see README).
    """
    args = ["fit", "--config", SAT6, "--data.init_args.root", str(SAT6_CSV), "--test_after_fit", "true"]
    args += ["--trainer.enable_progress_bar", "false"]
    assert main(args) == 0
    out = capsys.readouterr().out
    accuracy = float(re.search(r"^test accuracy: ([\d.]+)$", out, re.M).group(1))  # type: ignore[union-attr]
    assert accuracy >= 0.8, out
    _, run = _only_run(workdir)
    assert run.data.metrics["test_acc"] == pytest.approx(accuracy, abs=1e-4)
