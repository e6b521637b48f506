"""The best checkpoint of a fit becomes an MLflow model; ``--register`` puts it in the model registry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from mlflow import MlflowClient
from mlflow.artifacts import download_artifacts

from satcnn.errors import ModelError
from satcnn.inference.model_io import resolve_model_path
from satcnn.models.checkpoint import CHECKPOINT_KEY, weights_of
from satcnn.tracking.registry import CHECKPOINT_NAME
from tests.factories.fits import TrackedFit


def _weights(path: Path) -> dict[str, torch.Tensor]:
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    return weights_of(ckpt["state_dict"])


def test_fit_registers_the_best_model(tracked_fit: TrackedFit) -> None:
    """The shared fit (``--register sat6-classifier``; also ``--test_after_fit``: test_tracking.py)."""
    assert tracked_fit.code == 0
    uri = f"sqlite:///{tracked_fit.workdir / 'mlflow.db'}"
    client = MlflowClient(uri, registry_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("deepsat-sat6").experiment_id])  # type: ignore[union-attr]
    versions = client.search_model_versions("name='sat6-classifier'")
    assert [str(v.version) for v in versions] == ["1"] and versions[0].run_id == run.info.run_id
    assert str(client.get_model_version_by_alias("sat6-classifier", "current").version) == "1"
    assert "registered model: models:/sat6-classifier/1" in tracked_fit.stdout

    best = Path(run.data.tags["satcnn.best_checkpoint"])
    for model_uri in ("models:/sat6-classifier/1", "models:/sat6-classifier@current"):
        local, source_run, registered = resolve_model_path(model_uri, tracking_uri=uri)
        assert source_run == run.info.run_id and registered["version"] == "1"
        assert local.name == CHECKPOINT_NAME
        got, want = _weights(local), _weights(best)
        assert got.keys() == want.keys() and len(got) > 0
        assert all(torch.equal(got[k], want[k]) for k in want)

    # the MLmodel: signature of one (N, 28, 28) float32 tensor per band, named after it (issue 14:
    # the signature names the bands; it was one unnamed (N, 4, 28, 28) tensor), the satcnn block as
    # metadata, no pickled model
    model_dir = Path(
        download_artifacts(
            run_id=run.info.run_id, artifact_path="deepsat_cnn-classification", tracking_uri=uri
        )
    )
    spec = yaml.safe_load((model_dir / "MLmodel").read_text())
    inputs = yaml.safe_load(spec["signature"]["inputs"])
    assert [i["name"] for i in inputs] == ["red", "green", "blue", "nir"]
    assert all(i["tensor-spec"] == {"dtype": "float32", "shape": [-1, 28, 28]} for i in inputs)
    meta = spec["metadata"][CHECKPOINT_KEY]
    assert meta["classes"][-1] == "water" and meta["bands"] == ["red", "green", "blue", "nir"]
    assert meta["model"]["name"] == "deepsat_cnn" and len(meta["mean"]) == 4 and meta["patch_size"] == 28
    assert not list(model_dir.rglob("*.pkl"))

    # the pyfunc model predicts class probabilities from raw digital numbers
    import mlflow.pyfunc

    pyfunc = mlflow.pyfunc.load_model(str(model_dir))
    x = np.random.default_rng(0).integers(0, 255, (3, 4, 28, 28)).astype(np.float32)
    probs = np.asarray(pyfunc.predict({band: x[:, i] for i, band in enumerate(meta["bands"])}))
    assert probs.shape == (3, 6) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)


def test_resolve_model_path_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"missing\.ckpt: model checkpoint not found"):
        resolve_model_path(tmp_path / "missing.ckpt")
    with pytest.raises(ModelError, match="models:/<name>/<version>"):
        resolve_model_path("models:/a/b/c", tracking_uri=f"sqlite:///{tmp_path / 'm.db'}")
