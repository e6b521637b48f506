"""Shipped models: ``satcnn models pack`` -> ``models list`` -> ``infer --model pretrained:NAME``.

The model folder is a temporary one named by ``SATCNN_PRETRAINED_DIR`` (searched before the
package's own ``satcnn/pretrained/``), so no test writes into the package.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from satcnn.errors import ConfigError, ModelError
from satcnn.inference import InferenceOptions, export_tracking, pack, run_inference
from satcnn.inference.model_io import load_model
from satcnn.inference.pack import pack_model
from satcnn.models.pretrained import ENV_DIR, list_pretrained, package_dir
from tests.factories import CLASSES, ROOT, satcnn, write_checkpoint, write_tif

SEG = {"name": "resunet", "kwargs": {"in_channels": 3, "num_classes": 1, "filters": [4, 8, 16]}}


def _seg_checkpoint(path: Path, extra_states: bool = False) -> Path:
    ckpt = write_checkpoint(
        path,
        **SEG,
        task="segmentation",
        bands=["red", "green", "blue"],
        patch_size=64,  # type: ignore[arg-type]
    )
    if extra_states:  # what a Lightning checkpoint carries besides the weights
        raw = torch.load(ckpt, weights_only=True)
        raw["optimizer_states"] = [{"state": {0: {"exp_avg": torch.ones(1000)}}}]
        raw["loops"] = {"fit_loop": {"epoch": 3}}
        torch.save(raw, ckpt)
    return ckpt


@pytest.fixture
def model_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "models"
    monkeypatch.setenv(ENV_DIR, str(folder))
    return folder


@pytest.mark.slow
def test_pack_list_and_infer_by_name(tmp_path: Path, model_dir: Path) -> None:
    ckpt = _seg_checkpoint(tmp_path / "best.ckpt")
    scores = tmp_path / "metrics.json"
    metrics = {"metrics": {"iou": 0.41, "breakeven": 0.83}, "settings": {"threshold": 0.4}}
    scores.write_text(json.dumps(metrics))
    card = tmp_path / "card.yaml"
    card.write_text("description: tiny\nresolution_m: 1.0\ndata_licence: CC0\ntraining: {data: synthetic}\n")
    done = satcnn(
        "models", "pack", str(ckpt), "--name", "tiny-roads", "--out", str(model_dir), "--half",
        "--card", str(card), "--scores", str(scores), "--recipe", "pipelines/roads_massachusetts.yaml",
        cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "float16 weights" in done.stdout

    listed = satcnn("models", "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("tiny-roads "))  # beside shipped ones
    head, tail = lines[at : at + 2]
    assert head.startswith("tiny-roads  segmentation (ResUNet)  bands red,green,blue  1 m")
    assert "breakeven 0.830, iou 0.410" in head
    assert "pipelines/roads_massachusetts.yaml, seed 0, 30 epochs; data: synthetic; data licence: CC0" in tail

    image = write_tif(tmp_path / "tile.tif", count=3, height=64, width=96, res=1.0)
    out = tmp_path / "out"
    done = satcnn("infer", "--model", "pretrained:tiny-roads", "--input", str(image), "--output", str(out),
                  "--output-type", "prob_float32", "--no-track", "--no-progress")  # fmt: skip
    assert done.returncode == 0, done.stderr
    ref = tmp_path / "ref"
    run_inference(InferenceOptions(model=str(ckpt), inputs=str(image), output_dir=ref,
                                   output_type="prob_float32", track=False, progress=False))  # fmt: skip
    with rasterio.open(out / "tile.tif") as a, rasterio.open(ref / "tile.tif") as b:
        got, want = a.read(1), b.read(1)
    assert got.shape == (64, 96) and np.isfinite(got).all()
    assert np.abs(got - want).max() <= 1e-2  # float16 weights, float32 inference

    unknown = satcnn("infer", "--model", "pretrained:nowhere", "--input", str(image), "--output", str(out))
    assert unknown.returncode == 1
    [line] = unknown.stderr.strip().splitlines()
    assert line.startswith("satcnn: error: unknown pretrained model 'nowhere'; available: ")
    assert "tiny-roads" in line and line.endswith("(`satcnn models list` shows them)")


def test_pack_keeps_only_weights_and_record(tmp_path: Path, model_dir: Path) -> None:
    ckpt = _seg_checkpoint(tmp_path / "best.ckpt", extra_states=True)
    result = pack_model(ckpt, "full", model_dir)
    raw = torch.load(result.checkpoint, weights_only=True)
    assert sorted(raw) == ["satcnn", "state_dict"]
    assert all(v.dtype != torch.float16 for v in raw["state_dict"].values())
    assert result.max_abs_diff == 0.0
    half = pack_model(ckpt, "half", model_dir, half=True)
    sd = torch.load(half.checkpoint, weights_only=True)["state_dict"]
    assert sd["model.head.weight"].dtype == torch.float16 and sd["normalize.mean"].dtype == torch.float32
    assert half.size_bytes < result.size_bytes < ckpt.stat().st_size
    lm = load_model("pretrained:half")
    assert all(p.dtype == torch.float32 for p in lm.module.parameters())
    assert lm.bands == ["red", "green", "blue"] and lm.task == "segmentation"
    card = json.loads(half.card.read_text())
    assert card["weights"]["dtype"] == "float16" and card["weights"]["bytes"] == half.size_bytes
    assert card["model"] == SEG and card["satcnn_version"]
    shipped = {p.stem for p in package_dir().glob("*.json")}
    assert [m.name for m in list_pretrained() if m.name not in shipped] == ["full", "half"]


def test_pack_refuses_oversize_and_bad_names_writing_nothing(tmp_path: Path, model_dir: Path) -> None:
    ckpt = _seg_checkpoint(tmp_path / "best.ckpt")
    with pytest.raises(ModelError, match=r"over the 0.01 MB a shipped model may take; use --half"):
        pack_model(ckpt, "big", model_dir, max_mb=0.01)
    with pytest.raises(ConfigError, match="model name 'Big Model'"):
        pack_model(ckpt, "Big Model", model_dir)
    assert not list(model_dir.glob("*"))


def test_damaged_weight_file_is_refused(tmp_path: Path, model_dir: Path) -> None:
    result = pack_model(_seg_checkpoint(tmp_path / "best.ckpt"), "roads", model_dir, half=True)
    data = bytearray(result.checkpoint.read_bytes())
    data[-100] ^= 0xFF
    result.checkpoint.write_bytes(bytes(data))
    with pytest.raises(
        ModelError, match=r"roads.ckpt: the weight file's sha256 is .* not the .* card records"
    ):
        load_model("pretrained:roads")


def test_package_ships_its_model_folder() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    data = pyproject["tool"]["setuptools"]["package-data"]["satcnn"]
    assert {"pretrained/*.ckpt", "pretrained/*.json"} <= set(data)
    assert package_dir() == ROOT / "satcnn" / "pretrained"


def _strings(value: object) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def test_shipped_cards_name_no_path_of_the_machine_that_packed_them() -> None:
    models = [m for m in list_pretrained() if m.card_path.parent == package_dir()]
    assert models, "satcnn/pretrained/ ships no model"
    for model in models:
        model.verify()  # the weight file still matches the card's sha256
        absolute = [s for s in _strings(model.card) if s.startswith("/") or s.startswith("file:")]
        assert absolute == [], f"{model.card_path}: {absolute}"


def test_pack_classifier_takes_its_fit_test_scores(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = "0123456789abcdef0123456789abcdef"
    logged = {run: {"test_acc": 0.875, "val_acc": 0.5}}  # the run's metrics, as MLflow returns them
    monkeypatch.setattr(export_tracking, "run_metrics", lambda run_id, uri: logged.get(run_id, {}))
    ckpt = write_checkpoint(tmp_path / run / "checkpoints" / "best.ckpt")
    store = tmp_path / "mlruns" / "1" / "models" / "m-1" / "artifacts"
    registered = {"name": "landcover", "version": "3", "source": f"file://{store}"}
    monkeypatch.setattr(pack, "resolve_model_path", lambda model, uri: (ckpt, run, registered))
    monkeypatch.chdir(ROOT)
    result = pack_model(ckpt, "landcover", model_dir, recipe=ROOT / "pipelines" / "landcover.yaml")
    card = result.card_data
    # no path of this machine: relative to the working folder, else the last three parts
    assert card["training"]["recipe"] == "pipelines/landcover.yaml"
    assert card["training"]["source"] == f".../{run}/checkpoints/best.ckpt"
    assert card["training"]["registered"] == {**registered, "source": ".../models/m-1/artifacts"}
    assert card["task"] == "classification" and card["architecture"] == "DeepSat CNN"
    assert card["classes"] == CLASSES and card["patch_size"] == 28 and card["threshold"] is None
    assert card["scores"]["values"] == {"test_acc": 0.875}
    assert card["training"]["source_run_id"] == run and card["training"]["seed"] == 42
    assert load_model("pretrained:landcover").classes == CLASSES
