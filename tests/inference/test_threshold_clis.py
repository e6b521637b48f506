"""One road rule in every command: a probability exactly at the threshold is road in ``infer``
(its masks), ``vectorize roads`` and ``evaluate roads``, from float and uint8 probabilities alike;
an out-of-range threshold is the same usage error in each command."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import torch

from satcnn.cli import main
from satcnn.io.output_tags import OutputTags
from satcnn.io.road_mask import UINT8_SCALE
from satcnn.models import create_model
from satcnn.models.checkpoint import CheckpointMeta, ModelSpec, save_checkpoint
from tests.factories import satcnn, write_tif

ROAD_ROWS = slice(30, 35)


def write(path: Path, array: np.ndarray, **kw: object) -> Path:
    return write_tif(path, array, res=1.0, origin=(500000.0, 4000000.0), **kw)  # type: ignore[arg-type]


@pytest.fixture
def at_threshold(tmp_path: Path) -> dict[str, Path]:
    """A road at exactly p = 0.5 on a 0.25 background, as prob_float32 and prob_uint8, and its truth."""
    prob = np.full((64, 64), 0.25, np.float32)
    prob[ROAD_ROWS] = 0.5
    uint8 = write(tmp_path / "prob8.tif", np.rint(prob * UINT8_SCALE).astype(np.uint8), nodata=255)
    with rasterio.open(uint8, "r+") as ds:
        ds.scales = (1 / UINT8_SCALE,)
        OutputTags("prob_uint8").write(ds)
    assert rasterio.open(uint8).read(1)[ROAD_ROWS].min() == 127
    truth = np.zeros((64, 64), np.uint8)
    truth[ROAD_ROWS] = 1
    return {
        "float": write(tmp_path / "prob.tif", prob),
        "uint8": uint8,
        "truth": write(tmp_path / "truth.tif", truth),
    }


def test_vectorize_and_evaluate_count_p_equal_to_t_as_road(
    at_threshold: dict[str, Path], tmp_path: Path
) -> None:
    out = satcnn(
        "vectorize", "roads", str(at_threshold["uint8"]), "--out", "roads.gpkg", "--threshold", "0.5",
        "--no-progress", cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert len(gpd.read_file(tmp_path / "roads.gpkg", layer="lines")) == 1
    # evaluate graph vectorises both rasters by the same rule: the same road from float and uint8
    out = satcnn(
        "evaluate", "graph", "--pred", str(at_threshold["float"]), "--truth", str(at_threshold["uint8"]),
        "--threshold", "0.5", cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["prediction_edges"] == report["truth_edges"] == 1 and report["apls"] == 1.0, report
    truth = str(at_threshold["truth"])
    out = satcnn(
        "evaluate", "roads", "--pred", str(at_threshold["float"]), str(at_threshold["uint8"]),
        "--truth", truth, truth, "--threshold", "0.5", "--out-dir", "eval", "--figures", "0", "--no-track",
        cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())["metrics"]
    assert metrics["true_positives"] == 2 * 5 * 64 and metrics["false_positives"] == 0
    assert metrics["iou"] == 1.0 and metrics["relaxed_precision"] == metrics["relaxed_recall"] == 1.0


def test_infer_masks_p_equal_to_t_as_road_from_float_and_from_uint8(tmp_path: Path) -> None:
    # every weight zero: the model's logit is 0 everywhere, so p = sigmoid(0) = 0.5 exactly
    kwargs = {"in_channels": 1, "num_classes": 1, "base_filters": 4, "depth": 2}
    model = create_model("unet", **kwargs)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    meta = CheckpointMeta(
        task="segmentation",
        model=ModelSpec("unet", kwargs),
        bands=["pan"],
        mean=[100.0],
        std=[40.0],
        classes=["background", "road"],
        patch_size=32,
        input_dtype="uint8",
    )
    ckpt = save_checkpoint(tmp_path / "half.ckpt", model, meta, extra={"epoch": 1})
    tile = write(tmp_path / "tile.tif", np.arange(48 * 48, dtype=np.uint32).reshape(48, 48).astype(np.uint8))
    common = ["infer", "--model", str(ckpt), "--input", str(tile), "--threshold", "0.5", "--window", "32"]
    for kind in ("mask", "both"):  # the mask from the float probability, and from the uint8 COG
        out = satcnn(
            *common, "--margin", "4", "--output", kind, "--output-type", kind, "--no-track", cwd=tmp_path
        )
        assert out.returncode == 0, out.stderr
    with rasterio.open(tmp_path / "both" / "tile.tif") as ds:
        assert (ds.read(1) == 127).all()  # p = 0.5 stored as 127
    for mask in (tmp_path / "mask" / "tile.tif", tmp_path / "both" / "tile_mask.tif"):
        with rasterio.open(mask) as ds:
            assert (ds.read(1) == 1).all(), mask


@pytest.mark.parametrize(
    "command",
    [
        ["infer", "--model", "m.ckpt", "--input", "in.tif", "--output", "out"],
        ["vectorize", "roads", "prob.tif", "--out", "roads.gpkg"],
        ["evaluate", "roads", "--pred", "p.tif", "--truth", "t.tif", "--out-dir", "e"],
        ["evaluate", "graph", "--pred", "p.tif", "--truth", "t.geojson"],
    ],
)
def test_an_out_of_range_threshold_is_the_same_usage_error_everywhere(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        main([*command, "--threshold", "1.5"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and "Traceback" not in err
    assert errors[0].endswith("error: argument --threshold: must be in [0, 1], got 1.5"), errors
    assert not any(tmp_path.iterdir())
