"""Acceptance of issue 22: the shipped road model maps real roads right after install.

``satcnn infer --model pretrained:roads-massachusetts --input <1 m aerial GeoTIFF> --vector`` on a
real Massachusetts Roads tile of the valid split that the model never saw in training (tile 13,
held out by ``pipelines/roads_massachusetts.yaml``). The tile carries no location, so the test gives
its top-left 768 px a 1 m grid in Massachusetts State Plane (EPSG:26986): a 1 m aerial GeoTIFF as
users have them.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.transform import from_origin

from tests.factories import MASS_EXTRA, satcnn

SIZE = 768
GRID = {"crs": "EPSG:26986", "transform": from_origin(230_000.0, 900_000.0, 1.0, 1.0)}


def _geotiff(path: Path, array: np.ndarray) -> Path:
    bands = array.reshape(SIZE, SIZE, -1).transpose(2, 0, 1)
    with rasterio.open(
        path, "w", driver="GTiff", width=SIZE, height=SIZE, count=len(bands), dtype="uint8", **GRID
    ) as dst:
        dst.write(bands)
    return path


@pytest.mark.slow
def test_pretrained_road_model_maps_a_held_out_real_tile(tmp_path: Path) -> None:
    assert MASS_EXTRA.is_dir(), f"{MASS_EXTRA} is missing: the tests need ../shared beside the clone"
    sat = np.asarray(Image.open(MASS_EXTRA / "valid" / "sat" / "13.jpg").convert("RGB"))[:SIZE, :SIZE]
    label = np.asarray(Image.open(MASS_EXTRA / "valid" / "map" / "13.jpg").convert("L"))[:SIZE, :SIZE]
    image = _geotiff(tmp_path / "aerial.tif", sat)
    truth = _geotiff(tmp_path / "truth.tif", (label >= 128).astype("uint8"))

    listed = satcnn("models", "list")
    assert listed.returncode == 0 and "roads-massachusetts" in listed.stdout, listed.stderr
    out = tmp_path / "out"
    run = satcnn(
        "infer", "--model", "pretrained:roads-massachusetts", "--input", str(image),
        "--output", str(out), "--vector", "--no-track",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]

    mask = out / "aerial_mask.tif" if (out / "aerial_mask.tif").exists() else out / "aerial.tif"
    with rasterio.open(image) as src, rasterio.open(mask) as pred:
        assert (pred.crs, pred.transform, pred.shape) == (src.crs, src.transform, src.shape)
    graph = gpd.read_file(out / "aerial_roads.gpkg", layer="lines")
    assert graph.crs == "EPSG:26986"
    truth_m = (label >= 128).sum() / 5  # road pixels / about 5 px of rasterised width: metres of road
    assert 0.5 * truth_m < graph["length_m"].sum() < 1.5 * truth_m

    scored = satcnn(
        "evaluate", "roads", "--pred", str(out / "aerial.tif"), "--truth", str(truth),
        "--out-dir", str(tmp_path / "eval"), "--no-track",
    )  # fmt: skip
    assert scored.returncode == 0, scored.stderr[-2000:]
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())["metrics"]
    # on all of tile 13 (held out): breakeven 0.88, IoU 0.56
    assert metrics["breakeven"] > 0.8 and metrics["iou"] > 0.4, metrics
