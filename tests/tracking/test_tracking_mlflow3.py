"""MLflow 3 native tracking, read back through the MLflow client after one tiny fit: the best model
as a LoggedModel linked to its run, metrics and registered version; the data as dataset inputs with
a digest; system metrics; a signature that names the bands."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.artifacts import download_artifacts
from mlflow.entities import LoggedModelStatus
from mlflow.models import Model

from satcnn.inference.model_io import resolve_model_path
from satcnn.models.checkpoint import read_checkpoint
from satcnn.tracking.client import EXPERIMENT_KIND_TAG, get_or_create_experiment
from satcnn.tracking.datasets import fingerprint
from satcnn.tracking.system_metrics import SystemMetricsCallback
from tests.factories import CONFIGS, SAT6_CSV
from tests.factories.fits import TrackedFit, copy_store

DEBUG = str(CONFIGS / "trainer" / "debug.yaml")
SAT6 = str(CONFIGS / "deepsat" / "sat6.yaml")


def test_fit_is_mlflow3_native(tracked_fit: TrackedFit) -> None:
    """The shared fit: ``--test_after_fit true --register sat6-classifier --system_metrics_interval 0.2``."""
    assert tracked_fit.code == 0
    assert not tracked_fit.monitors  # stopped with the fit
    uri = f"sqlite:///{tracked_fit.workdir / 'mlflow.db'}"
    client = MlflowClient(uri, registry_uri=uri)
    experiment = client.get_experiment_by_name("deepsat-sat6")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])
    run_id = run.info.run_id

    # issue 24: a model-training experiment for MLflow's UI (not its GenAI view)
    assert experiment.tags[EXPERIMENT_KIND_TAG] == "custom_model_development"

    # the best model is a LoggedModel of this run, READY, an output of the run at the best step,
    # named after what it is (issue 24: all were "model"), and runs:/<run>/<name> resolves to it
    (model,) = client.search_logged_models([experiment.experiment_id])
    assert model.name == "deepsat_cnn-classification" and model.source_run_id == run_id
    by_name = Path(download_artifacts(f"runs:/{run_id}/{model.name}", tracking_uri=uri))
    assert (by_name / "MLmodel").is_file()
    assert model.status == LoggedModelStatus.READY
    best = read_checkpoint(run.data.tags["satcnn.best_checkpoint"])
    assert model.tags["satcnn.weights_digest"] == best.meta.weights_digest
    (output,) = run.outputs.model_outputs
    epochs = {m.step: int(m.value) for m in client.get_metric_history(run_id, "epoch")}
    assert output.model_id == model.model_id and epochs[output.step] == best.raw["epoch"]
    # ... linked to the metrics of that step (val_acc of the best epoch) and to its test metrics,
    # which name the evaluation data ...
    linked = {m.key: m for m in client.get_logged_model(model.model_id).metrics or []}
    assert {"val_acc", "val_loss", "test_acc"} <= set(linked) and linked["val_acc"].step == output.step
    history = {m.step: m.value for m in client.get_metric_history(run_id, "val_acc")}
    assert linked["val_acc"].value == history[output.step] == max(history.values())
    assert linked["test_acc"].value == run.data.metrics["test_acc"]
    assert linked["test_acc"].dataset_name == linked["val_acc"].dataset_name == "kaggle-csv:val+test"
    assert not [k for k in linked if k.startswith("system/")]
    # ... and to its registered version, which loads back as the same checkpoint
    (version,) = client.search_model_versions("name='sat6-classifier'")
    assert version.run_id == run_id and version.source == model.artifact_location
    links = json.loads(client.get_logged_model(model.model_id).tags["mlflow.modelVersions"])
    assert links == [{"name": "sat6-classifier", "version": "1"}]
    local, source_run, _ = resolve_model_path("models:/sat6-classifier@current", tracking_uri=uri)
    assert source_run == run_id and read_checkpoint(local).meta.weights_digest == best.meta.weights_digest

    # the signature names the bands, in the checkpoint's order
    mlmodel = Model.load(download_artifacts(artifact_uri=model.artifact_location, tracking_uri=uri))
    assert mlmodel.signature is not None
    assert mlmodel.signature.inputs.input_names() == ["red", "green", "blue", "nir"]
    assert [s.shape for s in mlmodel.signature.inputs.inputs] == [(-1, 28, 28)] * 4

    # the data: training and evaluation inputs whose digest covers the files' content and the split
    inputs = {
        next(t.value for t in d.tags if t.key == "mlflow.data.context"): d for d in run.inputs.dataset_inputs
    }
    assert set(inputs) == {"training", "evaluation"}
    files = fingerprint(SAT6_CSV)
    for item in inputs.values():
        tags = {t.key: t.value for t in item.tags}
        assert tags["satcnn.digest_kind"] == "content" and tags["satcnn.files"] == str(files.files) == "5"
        assert len(item.dataset.digest) == 32 and str(SAT6_CSV.resolve()) in item.dataset.source
    assert inputs["training"].dataset.name == "kaggle-csv:train"
    assert inputs["training"].dataset.digest != inputs["evaluation"].dataset.digest

    # system metrics, sampled every 0.2 s during the fit
    keys = set(client.get_run(run_id).data.metrics)
    assert {"system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"} <= keys


def test_experiments_are_tagged_as_training_unless_they_say_otherwise(
    tracked_fit: TrackedFit, tmp_path: Path
) -> None:
    """An experiment from before issue 24 is tagged when satcnn logs to it; a kind a user chose is kept."""
    uri = f"sqlite:///{copy_store(tracked_fit.workdir / 'mlflow.db', tmp_path / 'mlflow.db')}"
    client = MlflowClient(uri)
    old = client.create_experiment("old")
    mine = client.create_experiment("mine", tags={EXPERIMENT_KIND_TAG: "genai_development"})
    assert get_or_create_experiment(client, "old", None) == old
    assert get_or_create_experiment(client, "mine", None) == mine
    assert client.get_experiment(old).tags[EXPERIMENT_KIND_TAG] == "custom_model_development"
    assert client.get_experiment(mine).tags[EXPERIMENT_KIND_TAG] == "genai_development"


def test_data_digest_follows_content_or_file_list(tmp_path: Path) -> None:
    copy = tmp_path / "csv"
    shutil.copytree(SAT6_CSV, copy)
    same = fingerprint(copy)
    assert same.kind == "content" and same.digest == fingerprint(SAT6_CSV).digest  # content, not location
    path = copy / "test_y_200.csv"
    path.write_text(path.read_text().replace("1", "0", 1).replace("0", "1", 1))  # one label moved
    assert fingerprint(copy).digest != same.digest
    listed = fingerprint(copy, limit=0)  # above the content limit: names, sizes and times only
    assert listed.kind == "file-list" and listed.files == 5 and listed.digest != same.digest


def test_system_metrics_switch(workdir: Path) -> None:
    from satcnn.lightning_cli import SatcnnCLI

    def monitors(*extra: str) -> list[SystemMetricsCallback]:
        cli = SatcnnCLI(args=["--config", SAT6, "--config", DEBUG, *extra], run=False)
        return [c for c in cli.trainer.callbacks if isinstance(c, SystemMetricsCallback)]  # type: ignore[attr-defined]

    assert monitors("--system_metrics", "false") == []  # on by default: test_fit_is_mlflow3_native
    with pytest.raises(ValueError, match="interval"):
        SystemMetricsCallback(interval=0)
