"""``satcnn infer --block``: the flag derived from ``InferenceOptions.block``, end to end."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import rasterio

from satcnn.models import create_model
from satcnn.models.checkpoint import CheckpointMeta, ModelSpec, save_checkpoint
from tests.factories import satcnn, write_tif


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
    return write_tif(path, data, res=1.0, origin=(500000.0, 4000000.0), crs="EPSG:32614")


def _infer(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return satcnn("infer", *args, "--no-track", "--no-progress", cwd=cwd, timeout=300)


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
