"""Issue 24 items 1-2: patch tiles classified in batches across files, and a warning that holds for
many inputs logged once per run with its count (each input's warnings in the manifest)."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from satcnn.inference import InferenceOptions, load_model, run_inference
from tests.factories import CLASSES, NAIP, RGBA, SAT6_TIFS, crop, satcnn, write_checkpoint, write_tif

ALPHA = "is tagged alpha but holds varying values"


def _satcnn(*args: str) -> subprocess.CompletedProcess[str]:
    return satcnn(*args, "--no-track", "--no-progress", timeout=300)


def _patch_folder(root: Path) -> tuple[list[Path], Path]:
    """The 48 real SAT-6 patches in per-class folders, and one bad tile among them (in ``roads``)."""
    tiles = []
    for src in sorted((SAT6_TIFS / "trn").glob("*/*.tif")):
        dst = root / src.parent.name / src.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        tiles.append(Path(shutil.copyfile(src, dst)))
    bad = root / "roads" / "0_bad.tif"  # sorts first among the roads
    bad.write_bytes(b"II*\x00" + b"\x00" * 60)  # a TIFF header and nothing readable
    return tiles, bad


def _by_hand(ckpt: Path, tiles: list[Path]) -> dict[str, np.ndarray]:
    """Each tile alone through the checkpoint's model: its softmax on the raw patch."""
    lm = load_model(ckpt)
    out = {}
    for tile in tiles:
        with rasterio.open(tile) as ds:
            x = torch.from_numpy(ds.read().astype(np.float32))[None]
        with torch.inference_mode():
            out[str(tile)] = lm.module(x).softmax(1)[0].numpy()
    return out


@pytest.mark.slow  # a subprocess over 49 tiles, with metrics and the figure: 12 s on the loaded 2 cores
def test_patch_folder_with_a_bad_tile_gives_per_file_labels_and_one_warning_line(tmp_path: Path) -> None:
    ckpt = write_checkpoint(tmp_path / "sat6.ckpt")
    tiles, bad = _patch_folder(tmp_path / "trn")
    out = tmp_path / "out"
    args = ["--model", str(ckpt), "--input", str(tmp_path / "trn"), "--output", str(out)]
    proc = _satcnn("infer", *args, "--per-tile", "--allow-no-crs", "--keep-going")
    assert proc.returncode == 1, proc.stderr  # one input failed
    err = proc.stderr.splitlines()

    # the bad tile: reported once, and it leaves its batch alone
    assert [ln for ln in err if str(bad) in ln and "error" in ln.lower()] == [
        ln for ln in err if ln.startswith(f"satcnn: error: {bad}")
    ]
    assert len([ln for ln in err if ln.startswith("satcnn: error: ")]) == 1
    with (out / "predictions.csv").open() as f:
        rows = list(csv.DictReader(f))
    expected = _by_hand(ckpt, tiles)
    assert [r["tile"] for r in rows] == [str(t) for t in sorted(tiles, key=str)]  # input order
    for r in rows:
        probs = np.array([float(r[c]) for c in CLASSES])
        # the per-file result, to the CSV's 6 decimals (a batched pass may differ in the last float bit)
        np.testing.assert_allclose(probs, expected[r["tile"]], atol=1.1e-6, rtol=0)
        assert r["predicted"] == CLASSES[int(expected[r["tile"]].argmax())]

    # one line for a condition of all 48 tiles, with the count and an example; each in the manifest
    alpha = [ln for ln in err if ALPHA in ln]
    assert len(alpha) == 1 and "48 inputs" in alpha[0] and "manifest.json" in alpha[0], err
    assert len([ln for ln in err if "has no CRS" in ln]) == 1
    assert len(err) < 10, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    by_input = {o["input"]: o for o in manifest["outputs"]}
    assert all(any(ALPHA in w for w in by_input[str(t)]["warnings"]) for t in tiles)
    assert [f["input"] for f in manifest["failures"]] == [str(bad)]


def test_patch_tiles_share_model_passes_and_match_the_tile_alone(tmp_path: Path) -> None:
    ckpt = write_checkpoint(tmp_path / "sat6.ckpt")
    tiles, bad = _patch_folder(tmp_path / "trn")
    # without keep_going, the bad tile stops the run in input order, however far the readers got
    opts = InferenceOptions(
        ckpt, tmp_path / "trn", tmp_path / "stop", allow_no_crs=True, track=False, progress=False
    )
    with pytest.raises(Exception, match=r"0_bad\.tif"):
        run_inference(opts)
    manifest = json.loads((tmp_path / "stop" / "manifest.json").read_text())
    done = [o["input"] for o in manifest["outputs"] if o["status"] == "done"]
    assert done == [str(t) for t in sorted(tiles, key=str) if str(t) < str(bad)]
    assert [f["input"] for f in manifest["failures"]] == [str(bad)]

    bad.unlink()
    lm = load_model(ckpt)
    first_conv = next(m for m in lm.module.modules() if isinstance(m, torch.nn.Conv2d))
    batches: list[int] = []
    first_conv.register_forward_hook(lambda _m, args, _out: batches.append(args[0].shape[0]))
    opts = InferenceOptions(
        lm, tmp_path / "trn", tmp_path / "out", allow_no_crs=True, track=False, progress=False
    )
    report = run_inference(opts)
    assert [r.status for r in report.results] == ["done"] * 48
    assert sum(batches) == 48 and len(batches) < 48, batches  # tiles of many files in one pass
    expected = _by_hand(ckpt, tiles)
    for r in report.results:
        assert r.probabilities is not None
        got = np.array([r.probabilities[c] for c in CLASSES])
        np.testing.assert_allclose(got, expected[str(r.input)], atol=1e-6, rtol=0)


def test_class_maps_log_a_many_tile_warning_once(tmp_path: Path) -> None:
    ckpt = write_checkpoint(tmp_path / "sat6.ckpt")
    tiles = tmp_path / "tiles"
    with rasterio.open(crop(NAIP, tmp_path / "naip.tif", 56, 84)) as ds:
        data = ds.read()
    for i in range(3):  # RGBN with NIR tagged alpha, as the SAT-6 GeoTIFFs: data, used with a warning
        write_tif(tiles / f"t{i}.tif", np.roll(data, 7 * i, axis=2), colorinterp=RGBA)
    out = tmp_path / "out"
    proc = _satcnn("infer", "--model", str(ckpt), "--input", str(tiles), "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert len(list(out.glob("t*.tif"))) == 3  # class maps, not labels
    alpha = [ln for ln in proc.stderr.splitlines() if ALPHA in ln]
    assert len(alpha) == 1 and "3 inputs" in alpha[0] and str(tiles / "t0.tif") in alpha[0], proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert [len(o["warnings"]) for o in manifest["outputs"]] == [1, 1, 1]
