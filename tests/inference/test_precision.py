"""Precision and compile options: `satcnn infer --precision/--compile` and the task's `compile`."""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from satcnn.inference import InferenceOptions, OptionError, run_inference
from satcnn.inference.cli import infer_main
from satcnn.tasks.segmentation import SegmentationTask
from tests.factories import INFER, VEGAS, crop, pan_road_checkpoint


@pytest.fixture
def eager_compile(monkeypatch: pytest.MonkeyPatch) -> None:
    """``nn.Module.compile`` with dynamo's ``eager`` backend: the graph is captured and run, but
    without inductor's C++ code generation, which takes minutes on a loaded CI machine (the
    bench measures the real thing)."""
    monkeypatch.setattr(
        torch.nn.Module, "compile", functools.partialmethod(torch.nn.Module.compile, backend="eager")
    )


def _road_checkpoint(tmp_path: Path) -> Path:
    return pan_road_checkpoint(tmp_path / "road.ckpt")


def _prob(out: Path) -> np.ndarray:
    with rasterio.open(out / "tile.tif") as ds:
        return ds.read(1)


@pytest.mark.slow
def test_infer_precision_and_compile_change_dtype_not_the_result(
    tmp_path: Path, eager_compile: None, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt, tile = _road_checkpoint(tmp_path), crop(VEGAS, tmp_path / "tile.tif", 96)
    args = ["--model", str(ckpt), "--input", str(tile), "--window", "64", "--margin", "8"]
    args += ["--output-type", "prob_float32", "--no-track", "--no-progress"]
    outs = {}
    assert infer_main([*args, "--output", str(tmp_path / "32")]) == 0
    outs["32"] = _prob(tmp_path / "32")
    run = subprocess.run(
        [sys.executable, "-c", INFER, *args, "--output", str(tmp_path / "bf16"), "--precision", "bf16-mixed"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    outs["bf16"] = _prob(tmp_path / "bf16")
    diff = np.abs(outs["32"] - outs["bf16"])
    assert 0 < diff.max() < 0.05  # bf16 rounds differently but gives the same probabilities
    with pytest.raises(SystemExit) as bad:
        infer_main([*args, "--output", str(tmp_path / "x"), "--precision", "8"])
    assert bad.value.code == 2 and "--precision" in capsys.readouterr().err

    compiled = run_inference(
        InferenceOptions(
            ckpt,
            tile,
            tmp_path / "c",
            window=64,
            margin=8,
            output_type="prob_float32",
            track=False,
            progress=False,
            compile=True,
        )
    )
    assert [r.status for r in compiled.results] == ["done"]
    np.testing.assert_allclose(_prob(tmp_path / "c"), outs["32"], atol=1e-4)


def test_changed_precision_recomputes_the_output(tmp_path: Path) -> None:
    """Outputs carry the precision they were computed at: a rerun at another one recomputes."""
    ckpt, tile = _road_checkpoint(tmp_path), crop(VEGAS, tmp_path / "tile.tif", 96)
    kw: dict[str, object] = {"window": 64, "margin": 8, "output_type": "prob_float32"}
    kw |= {"track": False, "progress": False}
    out = tmp_path / "out"
    statuses = []
    for precision in ("32", "32", "bf16-mixed", "bf16-mixed", "32"):
        report = run_inference(InferenceOptions(ckpt, tile, out, precision=precision, **kw))  # type: ignore[arg-type]
        statuses.append(report.results[0].status)
        with rasterio.open(out / "tile.tif") as ds:
            assert ds.tags()["SATCNN_PRECISION"] == precision
    assert statuses == ["done", "skipped", "done", "skipped", "done"]


def test_precision_option_is_checked() -> None:
    try:
        InferenceOptions("m.ckpt", "a.tif", "out", precision="64")  # type: ignore[arg-type]
    except OptionError as err:
        assert err.option == "precision" and "bf16-mixed" in err.problem
    else:
        raise AssertionError("precision 64 was accepted")


def test_task_compile_keeps_checkpoint_keys_and_outputs(eager_compile: None) -> None:
    kw = {"model": "unet", "model_kwargs": {"base_filters": 4, "depth": 2}, "in_channels": 1}
    torch.manual_seed(0)
    plain = SegmentationTask(**kw).eval()  # type: ignore[arg-type]
    torch.manual_seed(0)
    compiled = SegmentationTask(**kw, compile=True).eval()  # type: ignore[arg-type]
    assert list(compiled.state_dict()) == list(plain.state_dict())  # no "_orig_mod." keys
    x = torch.rand(2, 1, 32, 32) * 255
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), plain(x), atol=1e-4, rtol=1e-4)
        with torch.autocast("cpu", dtype=torch.bfloat16):  # trainer.precision: bf16-mixed
            assert torch.allclose(plain(x).float(), plain(x.float()).float(), atol=0.1)
