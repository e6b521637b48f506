"""``satcnn evaluate roads|classes``: numbers computed by hand on 8x8 and 4x4 rasters, alignment
errors from the command line, and the MLflow run's tags read back."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS

from satcnn.errors import ConfigError, DataFormatError, RasterError
from satcnn.evaluate import EvaluationResult, evaluate_classes, evaluate_roads, log_evaluation
from satcnn.evaluate.tracking import INFERENCE_RUN_TAG, TRAINING_RUN_TAG
from tests.factories import range_server, satcnn, write_tif

CRS_UTM = CRS.from_epsg(32633)
ORIGIN = Affine(1.0, 0.0, 500000.0, 0.0, -1.0, 4000000.0)  # 1 m pixels


def write(
    path: Path, array: np.ndarray, *, transform: Affine = ORIGIN, crs: CRS | None = CRS_UTM, **kw: Any
) -> Path:
    """A one-band GeoTIFF holding ``array``."""
    return write_tif(path, array, transform=transform, crs=crs, **kw)


def road_truth() -> np.ndarray:
    """A vertical road along column 3 of an 8x8 tile."""
    truth = np.zeros((8, 8), np.uint8)
    truth[:, 3] = 1
    return truth


def road_probability() -> np.ndarray:
    """Road found on rows 0-3 (0.9), a parallel false road 2 px away (0.8), two far false alarms.

    At threshold 0.5: TP 4, FP 8 + 2 = 10, FN 4, TN 46. Relaxed (rho 3): 12 of 14 predicted pixels lie
    within 3 px of the road (col 5 is 2 px away; (0, 7) and (7, 7) are 4 px away); every road pixel has
    a prediction within 3 px (rows 4-7 see col 5). Going up the thresholds, the last point with
    precision < recall is (P 4/5, R 7/8) above 0.8 and the first with P > R is (P 1, R 7/8) above 0.85,
    so the breakeven is 0.8 + 0.075 / 0.2 * 0.2 = 0.875.
    """
    prob = np.full((8, 8), 0.1, np.float32)
    prob[:4, 3] = 0.9
    prob[:, 5] = 0.8
    prob[0, 7] = 0.85
    prob[7, 7] = 0.7
    return prob


def test_roads_match_hand_computed_values(tmp_path: Path) -> None:
    pred = write(tmp_path / "pred.tif", road_probability())
    truth = write(tmp_path / "truth.tif", road_truth())
    image = tmp_path / "image.tif"
    profile = {"driver": "GTiff", "count": 4, "height": 8, "width": 8, "dtype": "uint8"}
    with rasterio.open(image, "w", **profile, transform=ORIGIN, crs=CRS_UTM) as ds:
        ds.write(np.arange(256, dtype=np.uint8).reshape(4, 8, 8))
    result = evaluate_roads([pred], [truth], tmp_path / "out", images=[image])
    m = result.metrics
    assert (m["true_positives"], m["false_positives"], m["false_negatives"], m["true_negatives"]) == (
        4,
        10,
        4,
        46,
    )
    assert m["iou"] == pytest.approx(4 / 18)
    assert m["f1"] == pytest.approx(8 / 22)
    assert m["precision"] == pytest.approx(4 / 14)
    assert m["recall"] == pytest.approx(0.5)
    assert m["relaxed_precision"] == pytest.approx(12 / 14)
    assert m["relaxed_recall"] == pytest.approx(1.0)
    assert m["breakeven"] == pytest.approx(0.875, abs=1e-6)
    assert result.kind == "roads" and len(result.per_tile) == 1
    assert result.per_tile[0]["iou"] == pytest.approx(4 / 18)
    names = {p.name for p in result.files}
    assert {"metrics.json", "metrics.csv", "relaxed_pr_curve.png", "tile_000_pred.png"} <= names
    assert all(p.exists() and p.stat().st_size > 0 for p in result.files)
    report = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert report["metrics"]["iou"] == pytest.approx(4 / 18) and report["settings"]["rho"] == 3
    rows = (tmp_path / "out" / "metrics.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[-1].startswith("overall,")


def test_roads_pool_counts_over_tiles_and_read_uint8_and_mask_encodings(tmp_path: Path) -> None:
    # Tile 1: prob_uint8 (round(p * 254), scale 1/254, nodata 255) of the tile above.
    encoded = np.rint(road_probability() * 254).astype(np.uint8)
    pred1 = write(tmp_path / "a.tif", encoded, nodata=255)
    with rasterio.open(pred1, "r+") as ds:
        ds.scales = (1 / 254,)
    # Tile 2: a 0/1 mask that finds nothing; 2 road pixels, one of them nodata (not counted).
    mask = np.zeros((8, 8), np.uint8)
    mask[0, 0] = 255
    pred2 = write(tmp_path / "b.tif", mask, nodata=255)
    truth2 = np.zeros((8, 8), np.uint8)
    truth2[0, 0] = truth2[5, 5] = 255  # any non-zero value is road; the mask's nodata is not used
    t1, t2 = write(tmp_path / "ta.tif", road_truth()), write(tmp_path / "tb.tif", truth2, nodata=255)
    result = evaluate_roads([pred1, pred2], [t1, t2], tmp_path / "out", figures=0)
    tile2 = result.per_tile[1]
    assert tile2["prediction_type"] == "mask" and result.per_tile[0]["prediction_type"] == "probability"
    assert (tile2["pixels"], tile2["road_pixels"], tile2["iou"], tile2["recall"]) == (63, 1, 0.0, 0.0)
    assert math.isnan(tile2["precision"]) and math.isnan(tile2["relaxed_precision"])
    m = result.metrics  # pooled: TP 4, FP 10, FN 4 + 1
    assert m["iou"] == pytest.approx(4 / 19)
    assert m["f1"] == pytest.approx(8 / 23)
    assert m["relaxed_precision"] == pytest.approx(12 / 14)
    assert m["relaxed_recall"] == pytest.approx(8 / 9)
    assert [p.name for p in result.files] == ["metrics.json", "metrics.csv", "relaxed_pr_curve.png"]


def test_streaming_by_windows_counts_like_the_whole_raster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import satcnn.evaluate.masks as masks

    rng = np.random.default_rng(0)
    truth = (rng.random((37, 29)) < 0.03).astype(np.uint8)
    prob = np.clip(truth * 0.5 + rng.random((37, 29)) * 0.6, 0, 1).astype(np.float32)
    pred, true = write(tmp_path / "p.tif", prob), write(tmp_path / "t.tif", truth)
    whole = evaluate_roads([pred], [true], tmp_path / "whole", figures=0).metrics
    monkeypatch.setattr(masks, "WINDOW", 8)  # 8 px windows with 3 px of context: many seams
    tiled = evaluate_roads([pred], [true], tmp_path / "tiled", figures=0).metrics
    assert tiled == pytest.approx(whole, nan_ok=True)
    assert whole["pixels"] == 37 * 29 and 0 < whole["relaxed_precision"] < 1


def test_tile_figure_draws_the_input_first_when_given() -> None:
    import matplotlib.pyplot as plt

    from satcnn.evaluate.figures import road_tile_figure

    prob, valid, truth = road_probability(), np.ones((8, 8), bool), road_truth() > 0
    without = road_tile_figure(prob, valid, truth, 0.5, "t")
    with_input = road_tile_figure(prob, valid, truth, 0.5, "t", image=np.zeros((3, 8, 8), np.uint8))
    assert [a.get_title() for a in without.axes] == ["truth", "prediction", "overlay"]
    assert [a.get_title() for a in with_input.axes] == ["input", "truth", "prediction", "overlay"]
    plt.close(without)
    plt.close(with_input)


def test_centreline_truth_is_buffered_to_the_same_mask(tmp_path: Path) -> None:
    import geopandas as gpd
    from shapely.geometry import LineString

    pred = write(tmp_path / "pred.tif", road_probability())
    x = 500000.0 + 3.5  # centre of column 3; a 1 m wide road burns column 3 only
    lines = gpd.GeoDataFrame(
        geometry=[LineString([(x, 4000000.0), (x, 4000000.0 - 8)])], crs=CRS_UTM.to_wkt()
    )
    lines.to_file(tmp_path / "roads.geojson")
    with pytest.raises(ConfigError, match="buffer"):
        evaluate_roads([pred], [tmp_path / "roads.geojson"], tmp_path / "out")
    result = evaluate_roads([pred], [tmp_path / "roads.geojson"], tmp_path / "out", buffer_m=1.0, figures=1)
    assert result.metrics["iou"] == pytest.approx(4 / 18)
    assert result.metrics["breakeven"] == pytest.approx(0.875, abs=1e-6)


def test_bad_road_inputs_fail_before_anything_is_written(tmp_path: Path) -> None:
    truth = write(tmp_path / "truth.tif", road_truth())
    shifted = write(tmp_path / "shifted.tif", road_probability(), transform=ORIGIN * Affine.translation(1, 0))
    with pytest.raises(RasterError, match="not aligned") as err:
        evaluate_roads([shifted], [truth], tmp_path / "out")
    assert str(shifted) in str(err.value) and str(truth) in str(err.value)
    with pytest.raises(RasterError, match="not aligned"):
        evaluate_roads([truth], [truth], tmp_path / "out", images=[shifted])
    logits = write(tmp_path / "logits.tif", road_probability() * 4 - 2)
    with pytest.raises(DataFormatError, match=r"\[0, 1\]"):
        evaluate_roads([logits], [truth], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_class_coded_truth_is_refused_unless_allowed(tmp_path: Path) -> None:
    coded = road_truth() * 7  # a class-coded raster (road = class 7) given as truth by mistake
    coded[0, 0] = 3
    truth = write(tmp_path / "coded.tif", coded)
    pred = write(tmp_path / "pred.tif", road_probability())
    with pytest.raises(RasterError, match=r"coded\.tif: mask holds values 3, 7 .*--allow-other-mask-values"):
        evaluate_roads([pred], [truth], tmp_path / "out")
    assert not (tmp_path / "out").exists()
    allowed = evaluate_roads([pred], [truth], tmp_path / "out", allow_other_mask_values=True, figures=0)
    # every non-zero value is road: column 3 plus (0, 0), so one more false negative than the 0/1 truth
    reference = evaluate_roads([pred], [write(tmp_path / "t.tif", road_truth())], tmp_path / "ref", figures=0)
    assert allowed.metrics["iou"] < reference.metrics["iou"]


def class_map(path: Path, array: np.ndarray, names: list[str], **kw: object) -> Path:
    write(path, array, nodata=255, **kw)
    with rasterio.open(path, "r+") as ds:
        ds.update_tags(CLASS_NAMES=json.dumps(names))
    return path


def test_classes_match_hand_computed_confusion_matrix(tmp_path: Path) -> None:
    pred = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 2, 255], [2, 2, 0, 0]], np.uint8)
    truth = np.array([[0, 0, 1, 1], [0, 1, 1, 1], [2, 2, 1, 2], [255, 2, 0, 0]], np.uint8)
    m_path = class_map(tmp_path / "map.tif", pred, ["a", "b", "c"])
    t_path = write(tmp_path / "labels.tif", truth, nodata=255)
    result = evaluate_classes([m_path], [t_path], tmp_path / "out")
    # 14 pixels count (one nodata in each); true class by row, predicted by column.
    report = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert report["confusion_matrix"] == [[5, 0, 0], [1, 4, 1], [0, 0, 3]]
    m = result.metrics
    assert m["pixels"] == 14 and m["accuracy"] == pytest.approx(12 / 14)
    expected = {"a": (5 / 6, 1.0, 10 / 11), "b": (1.0, 4 / 6, 0.8), "c": (3 / 4, 1.0, 6 / 7)}
    for name, (p, r, f1) in expected.items():
        assert (m[f"precision_{name}"], m[f"recall_{name}"], m[f"f1_{name}"]) == pytest.approx((p, r, f1))
    assert m["macro_f1"] == pytest.approx((10 / 11 + 0.8 + 6 / 7) / 3)
    assert {"confusion_matrix.png", "per_class_scores.png", "per_class.csv", "confusion_matrix.csv"} <= {
        p.name for p in result.files
    }
    # the command line, with the class names given for a map without tags
    from satcnn.cli import main

    untagged = write(tmp_path / "untagged.tif", pred, nodata=255)
    args = ["--pred", str(untagged), "--truth", str(t_path), "--out-dir", str(tmp_path / "cli"), "--no-track"]
    assert main(["evaluate", "classes", *args]) == 1  # no CLASS_NAMES tag, no --classes
    assert main(["evaluate", "classes", *args, "--classes", "a,b,c"]) == 0
    cli_report = json.loads((tmp_path / "cli" / "metrics.json").read_text())
    assert cli_report["confusion_matrix"] == report["confusion_matrix"] and cli_report["classes"] == [
        "a",
        "b",
        "c",
    ]
    bad = write(tmp_path / "bad.tif", np.full((4, 4), 7, np.uint8))
    with pytest.raises(DataFormatError, match="class index 7"):
        evaluate_classes([m_path], [bad], tmp_path / "out2")


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_classes_against_labelled_patch_folders(tmp_path: Path) -> None:
    pred = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 2, 2], [2, 2, 0, 0]], np.uint8)
    ten_m = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0)
    (tmp_path / "maps").mkdir()
    big = class_map(tmp_path / "maps" / "scene.tif", pred, ["a", "b", "c"], transform=ten_m)
    single = class_map(tmp_path / "maps" / "x.tif", np.ones((1, 1), np.uint8), ["a", "b", "c"], crs=None)
    root = tmp_path / "patches"
    patch = np.zeros((2, 2), np.uint8)

    def put(cls: str, name: str, row: int | None, col: int | None) -> None:
        (root / cls).mkdir(parents=True, exist_ok=True)
        if row is None or col is None:  # no CRS: matched to the class map x.tif by its stem
            write(root / cls / name, patch, crs=None, transform=Affine.identity())
            return
        # a 2x2 patch of 1 m pixels whose centre lies in class-map pixel (row, col)
        t = Affine(1.0, 0.0, 500000.0 + 10 * col + 4, 0.0, -1.0, 4000000.0 - 10 * row - 4)
        write(root / cls / name, patch, transform=t)

    put("a", "p1.tif", 0, 0)  # a, predicted a
    put("b", "p2.tif", 1, 1)  # b, predicted a
    put("c", "p3.tif", 2, 0)  # c, predicted c
    put("c", "p4.tif", 9, 9)  # off the map: unscored
    put("b", "x.tif", None, None)  # b, predicted b (x.tif holds 1)
    result = evaluate_classes([big, single], root, tmp_path / "out")
    report = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert report["confusion_matrix"] == [[1, 0, 0], [1, 1, 0], [0, 0, 1]]
    assert result.metrics["patches"] == 4 and result.metrics["accuracy"] == pytest.approx(3 / 4)
    assert result.per_tile[-1] == {"prediction": "unscored", "truth": str(root), "patches": 1}
    (root / "d").mkdir()
    write(root / "d" / "p5.tif", patch)
    with pytest.raises(DataFormatError, match="'d' is not a class"):
        evaluate_classes([big], root, tmp_path / "out")


@pytest.mark.slow
def test_mlflow_run_links_the_inference_and_training_runs(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlflow import MlflowClient

    from satcnn.cli import main

    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("upstream")
    train, infer, parent = (client.create_run(exp).info.run_id for _ in range(3))
    pred = write(workdir / "pred.tif", road_probability())
    truth = write(workdir / "truth.tif", road_truth())
    common = ["evaluate", "roads", "--pred", str(pred), "--truth", str(truth), "--tracking-uri", uri]
    links = ["--inference-run", infer, "--training-run", train, "--parent-run", parent]
    assert main([*common, "--out-dir", "ev", *links, "--figures", "0"]) == 0
    run_id = capsys.readouterr().out.split("mlflow run id: ")[1].split()[0]
    run = client.get_run(run_id)
    assert run.data.tags[INFERENCE_RUN_TAG] == infer and run.data.tags[TRAINING_RUN_TAG] == train
    assert run.data.tags["mlflow.parentRunId"] == parent and run.data.tags["satcnn.evaluation"] == "roads"
    assert run.data.metrics["iou"] == pytest.approx(4 / 18) and run.info.status == "FINISHED"
    assert "precision" in run.data.metrics and "relaxed_recall" in run.data.metrics
    artifacts = {a.path for a in client.list_artifacts(run_id, "evaluation")}
    assert artifacts == {
        "evaluation/metrics.json",
        "evaluation/metrics.csv",
        "evaluation/relaxed_pr_curve.png",
    }
    # NaN (undefined) metrics are left out of the run
    result = EvaluationResult(metrics={"iou": 0.25, "precision": math.nan}, kind="classes")
    nan_run = client.get_run(log_evaluation(result, tracking_uri=uri, experiment="eval"))
    assert nan_run.data.metrics == {"iou": 0.25} and nan_run.data.tags["satcnn.evaluation"] == "classes"
    # a wrong run id fails before anything is computed or written
    assert main([*common, "--out-dir", "bad", "--training-run", "0" * 32]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not found" in err[0] and "0" * 32 in err[0]
    assert not (workdir / "bad").exists()


def test_cli_misaligned_rasters_give_one_line_naming_both_files(tmp_path: Path) -> None:
    truth = write(tmp_path / "truth.tif", road_truth())
    other = write(tmp_path / "pred.tif", road_probability(), crs=CRS.from_epsg(32634))
    args = ["--pred", str(other), "--truth", str(truth), "--out-dir", "ev", "--no-track"]
    out = satcnn("evaluate", "roads", *args, cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr
    assert "not aligned" in lines[0] and str(other) in lines[0] and str(truth) in lines[0]
    assert "EPSG:32634 vs EPSG:32633" in lines[0]
    assert not (tmp_path / "ev").exists()


@pytest.mark.slow  # a CLI run (about 4 s idle)
def test_cli_scores_hrefs_as_local_files_and_names_a_dead_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = tmp_path / "served"
    served.mkdir()
    write(served / "pred.tif", road_probability())
    write(served / "truth.tif", road_truth())
    write(served / "image.tif", road_truth() * 200)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    with range_server(served) as srv:
        listed = tmp_path / "preds.txt"  # a list file of hrefs, as infer takes
        listed.write_text(f"{srv.url}/pred.tif\n")
        args = ["--truth", f"{srv.url}/truth.tif", "--images", f"{srv.url}/image.tif", "--no-track"]
        out = satcnn("evaluate", "roads", "--pred", str(listed), *args, "--out-dir", "ev", cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        report = json.loads((tmp_path / "ev" / "metrics.json").read_text())
        assert report["metrics"]["iou"] == pytest.approx(4 / 18)
        assert report["metrics"]["relaxed_precision"] == pytest.approx(12 / 14)
        assert (tmp_path / "ev" / "tile_000_pred.png").stat().st_size > 0
        assert set(srv.requests) == {"pred.tif", "truth.tif", "image.tif"}  # no sidecar probes, no listing
        with pytest.raises(RasterError, match=rf"^{srv.url}/gone\.tif: .*404"):
            evaluate_roads([f"{srv.url}/pred.tif"], [f"{srv.url}/gone.tif"], tmp_path / "no")  # type: ignore[list-item]
        assert not (tmp_path / "no").exists()
