"""``satcnn infer --block``: the flag derived from ``InferenceOptions.block``, end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

from satcnn.models import create_model
from satcnn.models.checkpoint import CheckpointMeta, ModelSpec, save_checkpoint
from tests.conftest import ROOT


def _classifier(path: Path) -> Path:
    kwargs = {"in_channels": 4, "num_classes": 3}
    meta = CheckpointMeta(
        task="classification",
        model=ModelSpec("deepsat_cnn", kwargs),
        bands=["red", "green", "blue", "nir"],
        mean=[100.0] * 4,
        std=[40.0] * 4,
        classes=["a", "b", "c"],
        patch_size=28,
        input_dtype="uint8",
    )
    return save_checkpoint(path, create_model("deepsat_cnn", **kwargs), meta)


def _tile(path: Path) -> Path:
    data = np.random.default_rng(0).integers(0, 255, (4, 112, 112), dtype=np.uint8)
    profile = {
        "driver": "GTiff", "width": 112, "height": 112, "count": 4, "dtype": "uint8",
        "crs": "EPSG:32614", "transform": Affine(1.0, 0, 500000.0, 0, -1.0, 4000000.0),
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data)
    return path


def _infer(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "satcnn", "infer", *args, "--no-track", "--no-progress"]
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_block_flag_reaches_the_run_and_keeps_the_class_map(tmp_path: Path) -> None:
    model, tile = _classifier(tmp_path / "m.ckpt"), _tile(tmp_path / "tile.tif")
    maps = {}
    for block in ("56", "2048"):
        out = _infer("--model", str(model), "--input", str(tile), "--output", f"out{block}", "--block", block,
                     cwd=tmp_path)  # fmt: skip
        assert out.returncode == 0, out.stderr
        manifest = json.loads((tmp_path / f"out{block}" / "manifest.json").read_text())
        assert manifest["parameters"]["block"] == int(block)
        with rasterio.open(tmp_path / f"out{block}" / "tile.tif") as ds:
            maps[block] = ds.read()
    assert maps["56"].shape == (1, 4, 4) and np.array_equal(maps["56"], maps["2048"])  # blocks tile the map
