"""satcnn export: ONNX, pt2, TorchScript (normaliser inside), the STAC MLM card, ONNX in infer, MLflow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from mlflow import MlflowClient
from rasterio.windows import Window

from satcnn.cli import main
from satcnn.errors import ModelError
from satcnn.inference import InferenceOptions, load_model, run_inference
from satcnn.inference.export import SUFFIXES, export_model
from satcnn.inference.model_card import MLM_SCHEMA, card_path
from satcnn.io.reader import WindowReader
from tests.factories import ROOT, SAMPLES, write_checkpoint

NAIP = SAMPLES / "naip" / "m_4709963_se_14_1_20200831.tif"
RESUNET = {"in_channels": 4, "num_classes": 1, "filters": [4, 8, 16, 32]}  # size_multiple 8
# max abs difference of logits, export vs eager PyTorch; measured on these NAIP windows: ONNX 2.4e-7
# (ResUNet) and 5.2e-8 (DeepSat CNN), pt2 and TorchScript 0 (bit-identical)
TOLERANCE = 1e-4


def _naip(col: int, row: int, width: int, height: int) -> torch.Tensor:
    """A real NAIP window (raw digital numbers, float32), read through the pixel contract."""
    with rasterio.open(NAIP) as ds:
        data, valid = WindowReader(ds, 4).read(Window(col, row, width, height))
    assert valid.all()
    return torch.from_numpy(data)[None]


@pytest.fixture(scope="module")
def segmenter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_checkpoint(
        tmp_path_factory.mktemp("seg") / "roads.ckpt",
        name="resunet",
        kwargs=RESUNET,
        task="segmentation",
        patch_size=64,
    )


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_checkpoint(tmp_path_factory.mktemp("cls") / "sat6.ckpt")


def _run_export(fmt: str, path: Path):  # type: ignore[no-untyped-def]
    """The exported file as a callable, loaded with its own runtime (not satcnn's loader)."""
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda x: torch.from_numpy(session.run(None, {name: x.numpy()})[0])
    if fmt == "pt2":
        return torch.export.load(str(path)).module()
    return torch.jit.load(str(path))


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["onnx", "pt2", "torchscript"])
def test_export_matches_eager_on_naip(fmt: str, segmenter: Path, classifier: Path, tmp_path: Path) -> None:
    """Both task kinds, each format: raw NAIP digital numbers in, the eager model's logits out.

    The normaliser is in the graph (raw numbers in); the segmenter's batch, height and width are
    dynamic (a window of another shape and batch than the export's example), the classifier's batch.
    """
    seg = export_model(segmenter, fmt, tmp_path / "seg", track=False)  # type: ignore[arg-type]
    cls = export_model(classifier, fmt, tmp_path / "cls", track=False)  # type: ignore[arg-type]
    assert seg.path.parent == tmp_path / "seg" and seg.card == card_path(seg.path) and seg.card.is_file()
    assert seg.max_abs_diff < TOLERANCE and cls.max_abs_diff < TOLERANCE
    windows = {
        "seg": torch.cat([_naip(100, 200, 96, 136), _naip(400, 300, 96, 136)]),  # not the example's shape
        "cls": torch.cat([_naip(200 + 28 * i, 500, 28, 28) for i in range(5)]),
    }
    for key, ckpt, result in (("seg", segmenter, seg), ("cls", classifier, cls)):
        eager = load_model(ckpt).module
        run = _run_export(fmt, result.path)
        x = windows[key]
        with torch.inference_mode():
            want, got = eager(x), run(x)
        assert got.shape == want.shape
        diff = float((got - want).abs().max())
        assert diff < TOLERANCE, f"{fmt} {key}: max abs difference {diff:.3g}"
        assert float(want.abs().max()) > 10 * TOLERANCE  # the comparison is not between zeros


def test_model_card_fields(tmp_path: Path) -> None:
    """STAC MLM fields of a tiny classifier with its own band order, classes and patch size."""
    bands = ["nir", "red", "green", "blue"]
    classes = ["barren", "trees", "grassland", "other"]
    ckpt = write_checkpoint(
        tmp_path / "sat4.ckpt",
        kwargs={"in_channels": 4, "num_classes": 4, "channels": [8], "hidden": 16, "patch_size": 20},
        bands=bands,
        classes=classes,
        patch_size=20,
        mean=[90.0, 80.0, 70.0, 60.0],
        std=[30.0, 20.0, 25.0, 35.0],
    )
    result = export_model(ckpt, "pt2", track=False)
    assert result.path == tmp_path / "sat4.pt2" and result.card == tmp_path / "sat4.pt2.json"
    card = json.loads(result.card.read_text())
    assert card["type"] == "Feature" and MLM_SCHEMA in card["stac_extensions"]
    props = card["properties"]
    lm = load_model(ckpt)
    assert props["mlm:name"].startswith("satcnn-deepsat_cnn-")
    assert props["mlm:architecture"] == "DeepSat CNN"
    assert props["mlm:tasks"] == ["scene-classification"]
    assert (
        props["mlm:framework"] == "PyTorch"
        and props["mlm:framework_version"] == torch.__version__.split("+")[0]
    )
    assert "mlm:accelerator" in props and props["mlm:accelerator_constrained"] is False
    assert props["mlm:total_parameters"] == sum(p.numel() for p in lm.module.model.parameters())
    assert props["mlm:pretrained"] is False and props["mlm:pretrained_source"] is None
    (inp,) = props["mlm:input"]
    assert inp["bands"] == bands
    assert inp["input"] == {
        "shape": [-1, 4, 20, 20],
        "dim_order": ["batch", "channel", "height", "width"],
        "data_type": "float32",
    }
    assert inp["value_scaling"] is None  # the graph normalises: nothing to apply before it
    assert inp["resize_type"] is None and inp["pre_processing_function"] is None
    norm = props["satcnn:normalization"]
    assert norm["in_graph"] is True and norm["type"] == "z-score"
    assert norm["mean"] == [90.0, 80.0, 70.0, 60.0] and norm["stddev"] == [30.0, 20.0, 25.0, 35.0]
    (out,) = props["mlm:output"]
    assert out["result"]["shape"] == [-1, 4] and out["result"]["dim_order"] == ["batch", "class"]
    assert out["classification:classes"] == [{"value": i, "name": c} for i, c in enumerate(classes)]
    assert props["mlm:hyperparameters"]["patch_size"] == 20
    assert props["satcnn:checkpoint"]["weights_digest"] == lm.weights_digest
    asset = card["assets"]["model"]
    assert asset["href"] == "sat4.pt2" and "mlm:model" in asset["roles"]
    assert asset["mlm:artifact_type"] == "torch.export" and asset["file:size"] == result.path.stat().st_size


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["onnx", "pt2", "torchscript"])
def test_infer_runs_an_export_like_the_checkpoint(
    fmt: str, segmenter: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``satcnn export`` (in-process), then ``python -m satcnn infer --model x.<fmt>`` on a real NAIP crop."""
    tile = tmp_path / "tile.tif"
    with rasterio.open(NAIP) as ds:
        win = Window(300, 300, 150, 120)
        profile = {**ds.profile, "width": 150, "height": 120, "transform": ds.window_transform(win)}
        data = ds.read(window=win)
    with rasterio.open(tile, "w", **profile) as out:
        out.write(data)
    onnx_file = tmp_path / "export" / f"roads{SUFFIXES[fmt]}"
    args = ["export", "--model", str(segmenter), "--format", fmt, "--out", str(onnx_file), "--no-track"]
    assert main(args) == 0
    assert f"wrote {onnx_file} ({fmt}" in capsys.readouterr().out and card_path(onnx_file).is_file()
    infer = [sys.executable, "-m", "satcnn", "infer", "--model", str(onnx_file), "--input", str(tile)]
    infer += ["--output", str(tmp_path / "onnx"), "--output-type", "prob_float32"]
    infer += ["--window", "96", "--margin", "16"]
    done = subprocess.run([*infer, "--no-track", "--no-progress"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    options = InferenceOptions(
        segmenter,
        [tile],
        tmp_path / "ckpt",
        window=96,
        margin=16,
        output_type="prob_float32",
        progress=False,
        track=False,
    )
    run_inference(options)
    with (
        rasterio.open(tmp_path / "onnx" / "tile.tif") as a,
        rasterio.open(tmp_path / "ckpt" / "tile.tif") as b,
    ):
        got, want = a.read(1), b.read(1)
        assert a.tags()["SATCNN_MODEL"] == str(onnx_file)
    assert got.shape == want.shape == (120, 150)
    assert np.array_equal(np.isnan(got), np.isnan(want)) and not np.isnan(want).all()
    assert float(np.nanmax(np.abs(got - want))) < 1e-5 and float(np.nanstd(want)) > 0
    # a file that no longer matches its card is refused, naming the file
    onnx_file.write_bytes(onnx_file.read_bytes() + b"\0")
    with pytest.raises(ModelError, match="differs from its model card"):
        load_model(onnx_file)


@pytest.mark.slow
def test_export_is_logged_to_the_models_mlflow_run(classifier: Path, tmp_path: Path) -> None:
    """A model from an MLflow run: the export and its card go to the run's export/ folder."""
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(store)
    exp = client.create_experiment("export-test", artifact_location=str(tmp_path / "artifacts"))
    run_id = client.create_run(exp).info.run_id
    client.log_artifact(run_id, str(classifier), "checkpoints")
    client.log_metric(run_id, "val_acc", 0.75)
    result = export_model(f"runs:/{run_id}/checkpoints/sat6.ckpt", "onnx", tmp_path / "x.onnx", store)
    assert result.mlflow_run_id == run_id
    names = sorted(a.path for a in client.list_artifacts(run_id, "export"))
    assert names == ["export/x.onnx", "export/x.onnx.json"]
    assert client.get_run(run_id).data.tags["satcnn.export.onnx"] == "export/x.onnx"
    local = client.download_artifacts(run_id, "export/x.onnx.json", str(tmp_path / "dl"))
    card = json.loads(Path(local).read_text())
    assert card["properties"]["satcnn:metrics"]["val_acc"] == 0.75
    assert card["properties"]["satcnn:source"]["run_id"] == run_id
    # and infer's loader takes the logged export by its runs:/ URI (the card comes along)
    lm = load_model(f"runs:/{run_id}/export/x.onnx", tracking_uri=store)
    assert lm.classes == load_model(classifier).classes and lm.source_run_id == run_id


def test_export_bad_input_is_one_line(
    classifier: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", "--model", str(tmp_path / "nope.ckpt")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"satcnn: error: {tmp_path / 'nope.ckpt'}: ") and err.count("\n") == 1
    assert main(["export", "--model", str(classifier), "--out", str(tmp_path / "x.bin"), "--no-track"]) == 1
    assert "must end in .onnx" in capsys.readouterr().err and list(tmp_path.iterdir()) == []
