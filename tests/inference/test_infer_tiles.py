"""Inputs as users have them (issue 9 items 3-5, issue 11): tiles without a CRS, one label per
tile (the DeepSat patch folders), test-time augmentation, and ``infer --vector``."""

from __future__ import annotations

import csv
import json
import logging
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio
import torch

from satcnn.cli import main
from satcnn.data.class_names import match_class
from satcnn.inference import InferenceOptions, load_model, run_inference
from satcnn.inference.classify import class_map_transform, classify_raster
from satcnn.inference.segment import predict_raster
from satcnn.inference.tta import dihedral
from tests.factories import (
    CLASSES,
    NAIP,
    SAT6_TIFS,
    crop,
    noise_bands,
    patch_classifier,
    satcnn,
    scaled,
    seg_model,
    write_checkpoint,
    write_tif,
)

SAT6_TRN = SAT6_TIFS / "trn"


def _by_hand(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, kind: str) -> torch.Tensor:
    """The TTA mean spelled out: each transform applied, the model run, the transform undone."""
    outs = []
    for turns, flip in dihedral(kind):
        z = x.flip(-1) if flip else x
        y = fn(torch.rot90(z, turns, dims=(-2, -1)))
        y = torch.rot90(y, -turns, dims=(-2, -1))
        outs.append(y.flip(-1) if flip else y)
    assert len(outs) == {"flip": 4, "d4": 8}[kind]
    return torch.stack(outs).mean(0)


def _satcnn(*args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return satcnn(*args, "--no-track", "--no-progress", timeout=timeout)


# -- TTA -----------------------------------------------------------------------------------------------
def test_tta_d4_is_the_mean_of_8_transforms_and_stays_seam_free(tmp_path: Path) -> None:
    data = noise_bands(70, 91, seed=3)
    src = write_tif(tmp_path / "in.tif", data)
    model = scaled(seg_model())
    x = torch.from_numpy(data.astype(np.float32))[None]
    with torch.inference_mode():
        expected = _by_hand(lambda z: model(z)[:, 0], x, "d4")[0].numpy()
        plain = model(x)[0, 0].numpy()
    assert np.abs(expected - plain).max() > 1e-3  # the transforms change the output: the test has teeth
    dst = tmp_path / "prob.tif"
    # windows of 32 with a margin of 4 (the model's receptive field radius is 3): many seams
    predict_raster(model, src, dst, window=32, margin=4, output="prob_float32", tta="d4", progress=False)
    with rasterio.open(dst) as ds:
        np.testing.assert_allclose(ds.read(1), expected, atol=1e-5, rtol=0)
        assert ds.tags()["SATCNN_TTA"] == "d4"


def test_tta_class_map_is_the_argmax_of_mean_window_probabilities(tmp_path: Path) -> None:
    P, S = 8, 4
    data = noise_bands(40, 29, seed=6)
    src = write_tif(tmp_path / "in.tif", data)
    model = patch_classifier(P, S, 3)
    dst = tmp_path / "classes.tif"
    classify_raster(
        model, src, dst, patch_size=P, stride=S, classes=["a", "b", "c"], tta="flip", progress=False
    )
    x = torch.from_numpy(data.astype(np.float32))
    out_h, out_w = (40 - P) // S + 1, (29 - P) // S + 1
    wins = torch.stack(
        [x[:, i * S : i * S + P, j * S : j * S + P] for i in range(out_h) for j in range(out_w)]
    )
    with torch.inference_mode():
        probs = _by_hand(lambda z: model(z).softmax(1), wins, "flip")[:, :, 0, 0]
        plain = model(wins)[:, :, 0, 0].argmax(1)
    expected = probs.argmax(1).numpy().reshape(out_h, out_w)
    assert (plain.numpy().reshape(out_h, out_w) != expected).any()  # flips change some windows
    with rasterio.open(dst) as ds:
        np.testing.assert_array_equal(ds.read(1), expected)


@pytest.mark.slow
def test_infer_tta_and_vector_through_the_cli(tmp_path: Path) -> None:
    ckpt = write_checkpoint(tmp_path / "sat6.ckpt")
    tile = crop(NAIP, tmp_path / "tile.tif", 84, 112)
    out = tmp_path / "out"
    args = ["--model", str(ckpt), "--input", str(tile), "--output", str(out), "--stride", "4"]
    proc = _satcnn("infer", *args, "--tta", "d4", "--vector")
    assert proc.returncode == 0, proc.stderr

    lm = load_model(ckpt)
    with rasterio.open(tile) as ds:
        x = torch.from_numpy(ds.read().astype(np.float32))
    rows, cols = (84 - 28) // 4 + 1, (112 - 28) // 4 + 1
    wins = torch.stack(
        [x[:, i * 4 : i * 4 + 28, j * 4 : j * 4 + 28] for i in range(rows) for j in range(cols)]
    )
    with torch.inference_mode():
        probs = _by_hand(lambda z: lm.module(z).softmax(1)[:, :, None, None], wins, "d4")[:, :, 0, 0]
        plain = lm.module(wins).argmax(1).numpy().reshape(rows, cols)
    expected = probs.argmax(1).numpy().reshape(rows, cols)
    assert (expected != plain).any()  # the transforms change some windows: the test has teeth
    with rasterio.open(out / "tile.tif") as ds:
        np.testing.assert_array_equal(ds.read(1), expected)
        assert ds.tags()["SATCNN_TTA"] == "d4"

    gpkg = out / "tile_classes.gpkg"
    polygons = pyogrio.read_dataframe(gpkg, layer="classes")
    assert polygons.crs.to_epsg() == 26914
    assert set(polygons["class_name"]) == {CLASSES[int(k)] for k in np.unique(expected)}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["outputs"][0]["outputs"] == [str(out / "tile.tif"), str(gpkg)]
    assert manifest["parameters"]["tta"] == "d4" and manifest["parameters"]["vector"] is True


@pytest.mark.slow
def test_road_vectors_join_the_outputs_and_the_rerun_rule(tmp_path: Path) -> None:
    ckpt = write_checkpoint(
        tmp_path / "road.ckpt",
        name="unet",
        kwargs={"in_channels": 4, "num_classes": 1, "base_filters": 4, "depth": 2},
        task="segmentation",
        patch_size=32,
        std=[5.0] * 4,  # a high-contrast input: the random net's output varies
    )
    tile = crop(NAIP, tmp_path / "tile.tif", 48, 64)
    lm = load_model(ckpt)
    with rasterio.open(tile) as ds:
        x = torch.from_numpy(ds.read().astype(np.float32))[None]
    with torch.inference_mode():
        threshold = float(np.median(lm.module(x)[0, 0].sigmoid().numpy()))  # half the pixels are road
    out = tmp_path / "out"
    opts = {"window": 64, "margin": 8, "output_type": "prob_float32", "threshold": threshold, "vector": True}
    report = run_inference(InferenceOptions(ckpt, tile, out, track=False, progress=False, **opts))
    gpkg = out / "tile_roads.gpkg"
    assert report.results[0].outputs == [out / "tile.tif", gpkg]
    assert {"lines", "nodes"} <= {name for name, _ in pyogrio.list_layers(gpkg)}
    lines = pyogrio.read_dataframe(gpkg, layer="lines")
    assert len(lines) > 0 and lines.crs.to_epsg() == 26914

    # both outputs current -> skipped; a missing vector file -> the tile is recomputed
    again = run_inference(InferenceOptions(ckpt, tile, out, track=False, progress=False, **opts))
    assert [r.status for r in again.results] == ["skipped"]
    gpkg.unlink()
    redo = run_inference(InferenceOptions(ckpt, tile, out, track=False, progress=False, **opts))
    assert [r.status for r in redo.results] == ["done"] and gpkg.exists()
    assert pyogrio.read_info(gpkg)["dataset_metadata"] == {"SATCNN_THRESHOLD": str(threshold)}

    # only --threshold changes, through the CLI: the probability stays valid, the lines do not
    args = ["--model", str(ckpt), "--input", str(tile), "--output", str(out), "--window", "64"]
    args += ["--margin", "8", "--output-type", "prob_float32", "--vector", "--no-progress", "--no-track"]
    proc = satcnn("infer", *args, "--threshold", str(min(threshold + 0.05, 1.0)))
    assert proc.returncode == 0, proc.stderr
    new = pyogrio.read_info(gpkg)["dataset_metadata"]["SATCNN_THRESHOLD"]
    assert float(new) == min(threshold + 0.05, 1.0)


# -- tiles without a CRS -------------------------------------------------------------------------------
def test_no_crs_writes_the_pixel_grid_after_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ckpt = write_checkpoint(tmp_path / "sat6.ckpt")
    tiles = tmp_path / "tiles"
    tiles.mkdir()
    for name, (rows, cols) in {"a": (64, 90), "b": (60, 57)}.items():
        crop(NAIP, tiles / f"{name}.tif", rows, cols, crs=None)
    out = tmp_path / "out"
    with pytest.raises(Exception, match=r"a\.tif: has no coordinate reference system .*--allow-no-crs"):
        run_inference(InferenceOptions(ckpt, tiles, out, track=False, progress=False))
    assert not list(out.glob("*.tif"))
    with caplog.at_level(logging.WARNING, logger="satcnn"):
        report = run_inference(
            InferenceOptions(ckpt, tiles, out, allow_no_crs=True, track=False, progress=False)
        )
    assert [r.status for r in report.results] == ["done", "done"]
    assert len([r for r in caplog.records if "has no CRS" in r.getMessage()]) == 1
    for name in ("a", "b"):
        with rasterio.open(tiles / f"{name}.tif") as src, rasterio.open(out / f"{name}.tif") as ds:
            assert ds.crs is None
            assert ds.transform == class_map_transform(src.transform, 28, 28)
            assert (ds.height, ds.width) == ((src.height - 28) // 28 + 1, (src.width - 28) // 28 + 1)


def test_no_crs_road_tile_gets_its_graph_on_the_pixel_grid(tmp_path: Path) -> None:
    """``infer --allow-no-crs --vector`` (Massachusetts Roads tiles): the graph in the raster x/y, no CRS."""
    kwargs = {"in_channels": 4, "num_classes": 1, "base_filters": 4, "depth": 2}
    ckpt = write_checkpoint(
        tmp_path / "road.ckpt", name="unet", kwargs=kwargs, task="segmentation", patch_size=32
    )
    tile = crop(NAIP, tmp_path / "tile.tif", 48, 64, crs=None)
    opts = {
        "window": 64,
        "margin": 8,
        "output_type": "mask",
        "threshold": 0.0,
        "vector": True,
        "allow_no_crs": True,
    }
    report = run_inference(
        InferenceOptions(ckpt, tile, tmp_path / "out", track=False, progress=False, **opts)
    )
    assert [r.status for r in report.results] == ["done"]
    lines = pyogrio.read_dataframe(tmp_path / "out" / "tile_roads.gpkg", layer="lines")
    with rasterio.open(tile) as ds:
        left, bottom, right, top = ds.bounds
    x0, y0, x1, y1 = lines.total_bounds
    assert lines.crs is None and len(lines) > 0
    assert left <= x0 and x1 <= right and min(bottom, top) <= y0 and y1 <= max(bottom, top)


# -- one label per tile --------------------------------------------------------------------------------
def test_folder_names_match_classes() -> None:
    assert match_class("roads", CLASSES) == "road"
    assert match_class("barren_land", CLASSES) == "barren"
    assert match_class("Trees", CLASSES) == "trees"
    assert match_class("Grass", CLASSES) == "grassland"
    assert match_class("clouds", CLASSES) is None


@pytest.mark.slow
def test_sat6_patch_folder_gets_labels_and_metrics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = write_checkpoint(tmp_path / "sat6.ckpt")
    out = tmp_path / "out"
    # without the flag: one error naming the first tile and the flag, nothing written
    args = ["infer", "--model", str(ckpt), "--input", str(SAT6_TRN), "--output", str(out)]
    assert main([*args, "--no-track", "--no-progress"]) == 1
    err = capsys.readouterr().err
    errors = [ln for ln in err.splitlines() if ln.startswith("satcnn: error: ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert "has no coordinate reference system" in errors[0] and "--allow-no-crs" in errors[0]
    assert errors[0].startswith(f"satcnn: error: {SAT6_TRN / 'barren_land'}")
    assert not (out / "predictions.csv").exists()

    proc = _satcnn(
        "infer", "--model", str(ckpt), "--input", str(SAT6_TRN), "--output", str(out), "--allow-no-crs"
    )
    assert proc.returncode == 0, proc.stderr
    assert f"predictions: {out / 'predictions.csv'}" in proc.stdout
    with (out / "predictions.csv").open() as f:
        rows = list(csv.DictReader(f))
    tiles = sorted(SAT6_TRN.glob("*/*.tif"))
    assert sorted(r["tile"] for r in rows) == sorted(str(t) for t in tiles) and len(rows) == 48
    assert not list(out.glob("*.tif"))  # labels, not one-pixel class maps
    folder_class = {"barren_land": "barren", "building": "building", "grassland": "grassland"}
    folder_class |= {"roads": "road", "trees": "trees", "water": "water"}
    for r in rows:
        probs = np.array([float(r[c]) for c in CLASSES])
        assert probs.sum() == pytest.approx(1.0, abs=1e-4)
        assert r["predicted"] == CLASSES[int(probs.argmax())]
        assert r["label"] == folder_class[Path(r["tile"]).parent.name]

    # one tile by hand: the checkpoint's softmax on the raw patch
    lm = load_model(ckpt)
    with rasterio.open(rows[0]["tile"]) as ds:
        x = torch.from_numpy(ds.read().astype(np.float32))[None]
    with torch.inference_mode():
        by_hand = lm.module(x).softmax(1)[0].numpy()
    np.testing.assert_allclose([float(rows[0][c]) for c in CLASSES], by_hand, atol=1e-5)

    metrics = json.loads((out / "metrics.json").read_text())
    labels = [r["label"] for r in rows]
    preds = [r["predicted"] for r in rows]
    assert metrics["tiles"] == 48
    assert metrics["accuracy"] == pytest.approx(np.mean([a == b for a, b in zip(labels, preds, strict=True)]))
    for c in CLASSES:
        hits = sum(a == b == c for a, b in zip(labels, preds, strict=True))
        assert metrics["per_class"][c]["support"] == labels.count(c)
        assert metrics["per_class"][c]["recall"] == pytest.approx(hits / max(labels.count(c), 1))
        assert metrics["per_class"][c]["precision"] == pytest.approx(hits / max(preds.count(c), 1))
        p, r = metrics["per_class"][c]["precision"], metrics["per_class"][c]["recall"]
        assert metrics["per_class"][c]["f1"] == pytest.approx(2 * p * r / (p + r) if p + r else 0.0)
    matrix = np.array(metrics["confusion_matrix"])
    assert matrix.sum() == 48 and matrix[CLASSES.index("road")].sum() == labels.count("road")
    assert (out / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_per_tile_on_larger_tiles_averages_the_windows(tmp_path: Path) -> None:
    ckpt = write_checkpoint(tmp_path / "sat6.ckpt")
    tiles = tmp_path / "tiles"
    tiles.mkdir()
    big = crop(NAIP, tiles / "big.tif", 56, 84)
    patch = crop(NAIP, tiles / "patch.tif", 28, 28)
    out = tmp_path / "out"
    # auto: the patch-sized tile gets a label, the larger one keeps its class map
    report = run_inference(InferenceOptions(ckpt, tiles, out, track=False, progress=False))
    assert [r.outputs for r in report.results] == [[out / "big.tif"], []]
    with (out / "predictions.csv").open() as f:
        assert [r["tile"] for r in csv.DictReader(f)] == [str(patch)]
    assert not (out / "metrics.json").exists()  # no per-class folders: no labels

    run_inference(
        InferenceOptions(ckpt, big, out / "per_tile", per_tile=True, tta="flip", track=False, progress=False)
    )
    with (out / "per_tile" / "predictions.csv").open() as f:
        (row,) = list(csv.DictReader(f))
    lm = load_model(ckpt)
    with rasterio.open(big) as ds:
        x = torch.from_numpy(ds.read().astype(np.float32))
    wins = torch.stack([x[:, i : i + 28, j : j + 28] for i in (0, 28) for j in (0, 28, 56)])
    with torch.inference_mode():
        expected = _by_hand(lambda z: lm.module(z).softmax(1)[:, :, None, None], wins, "flip").mean(0)[
            :, 0, 0
        ]
    np.testing.assert_allclose([float(row[c]) for c in CLASSES], expected.numpy(), atol=1e-5)


def test_generated_patch_folders_with_repeated_names(tmp_path: Path) -> None:
    """Corpus case: a labelled patch folder without CRS, the same file names in each class folder."""
    ckpt = write_checkpoint(tmp_path / "sat6.ckpt")
    root = tmp_path / "patches"
    rng = np.random.default_rng(0)
    for folder in ("Roads", "water", "clouds"):
        (root / folder).mkdir(parents=True)
        for i in range(2):
            with rasterio.open(
                root / folder / f"{i}.tif", "w", driver="GTiff", width=28, height=28, count=4, dtype="uint8"
            ) as ds:
                ds.write(rng.integers(0, 255, (4, 28, 28), dtype=np.uint8))
    out = tmp_path / "out"
    report = run_inference(InferenceOptions(ckpt, root, out, allow_no_crs=True, track=False, progress=False))
    assert [r.status for r in report.results] == ["done"] * 6
    with (out / "predictions.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(Path(r["tile"]).parent.name, r["label"]) for r in rows] == [
        ("Roads", "road"),
        ("Roads", "road"),
        ("clouds", ""),
        ("clouds", ""),
        ("water", "water"),
        ("water", "water"),
    ]
    assert report.metrics_json is None and not (out / "metrics.json").exists()  # "clouds" is no class
