"""What ``python -m satcnn infer`` prints and leaves behind: refusals, hints and warnings."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import rasterio

from satcnn.flags import satcnn_command
from satcnn.models.pretrained import package_dir
from tests.factories import satcnn, write_checkpoint, write_tif

ROAD = {"name": "resunet", "kwargs": {"in_channels": 3, "num_classes": 1, "filters": [4, 8, 16]}}


def _infer(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return satcnn("infer", *args, "--no-progress", cwd=cwd, timeout=300)


def test_a_missing_input_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    good = write_tif(tmp_path / "good.tif", count=3, height=32, width=32, res=1.0)
    # tracked (the default): an MLflow run would create mlflow.db in the working folder
    run = _infer("--model", "pretrained:roads-massachusetts", "--input", str(good),
                 "--input", str(tmp_path / "gone.tif"), "--input", str(tmp_path / "lost.tif"),
                 "--output", "out", "--keep-going", cwd=tmp_path)  # fmt: skip
    assert run.returncode == 1, run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("satcnn: error:")]
    assert errors == [
        f"satcnn: error: {tmp_path / 'gone.tif'}: raster not found; 1 other input not found either "
        f"(e.g. {tmp_path / 'lost.tif'}); nothing was run"
    ], run.stderr
    assert "Traceback" not in run.stderr and run.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.tif"]  # no folder, manifest or MLflow store


@pytest.mark.slow  # two infer runs (one with --vector): ~6 s
@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")  # writing the no-CRS tile
def test_the_map_hint_only_for_a_folder_that_view_takes_and_runnable_from_here(tmp_path: Path) -> None:
    model = write_checkpoint(
        tmp_path / "road.ckpt", **ROAD, task="segmentation", bands=["red", "green", "blue"]
    )
    located = write_tif(tmp_path / "located.tif", count=3, height=32, width=32, res=1.0)
    unlocated = write_tif(tmp_path / "unlocated.tif", count=3, height=32, width=32, georeferenced=False)
    args = ("--model", str(model), "--allow-no-crs", "--no-track")
    inputs = ("--input", str(located), "--input", str(unlocated))
    mixed = _infer(*args, *inputs, "--output", "mixed", "--vector", cwd=tmp_path)
    assert mixed.returncode == 0, mixed.stderr
    # the graph without a CRS: the run's one warning, not pyogrio's per layer ("'crs' was not provided")
    assert "was not provided" not in mixed.stderr and mixed.stderr.count("has no CRS") == 1, mixed.stderr
    assert "manifest:" in mixed.stdout and "on a map" not in mixed.stdout  # view refuses a CRS mix
    pixel = _infer(*args, "--input", str(unlocated), "--output", "pixel", cwd=tmp_path)
    assert pixel.returncode == 0, pixel.stderr
    # the same PATH and interpreter as the child's: `satcnn`, `python -m satcnn` or this python's path
    assert f"see them on a map: {satcnn_command('view', 'pixel')}\n" in pixel.stdout


def test_stac_items_of_a_shipped_model_link_its_card(tmp_path: Path) -> None:
    tile = write_tif(tmp_path / "tile.tif", count=3, height=32, width=32, res=1.0)
    run = _infer("--model", "pretrained:roads-massachusetts", "--input", str(tile), "--output", "out",
                 "--no-track", cwd=tmp_path)  # fmt: skip
    assert run.returncode == 0, run.stderr
    item = json.loads((tmp_path / "out" / "items" / "tile.json").read_text())
    [via] = [link for link in item["links"] if link["rel"] == "via"]
    card = package_dir() / "roads-massachusetts.json"
    assert via["href"] == str(card.resolve()) and via["type"] == "application/json"
    assert via["title"].startswith("pretrained:roads-massachusetts")
    assert json.loads(Path(via["href"]).read_text())["resolution_m"] == 1.0  # it resolves, to the card


def test_an_input_far_from_the_model_cards_resolution_is_warned_of_once(tmp_path: Path) -> None:
    fine = write_tif(tmp_path / "fine.tif", count=3, height=64, width=64, res=0.25)  # the card: 1 m
    near = write_tif(tmp_path / "near.tif", count=3, height=64, width=64, res=1.2)
    run = _infer("--model", "pretrained:roads-massachusetts", "--input", str(fine), "--input", str(near),
                 "--output", "out", "--no-track", cwd=tmp_path)  # fmt: skip
    assert run.returncode == 0, run.stderr
    [warning] = [line for line in run.stderr.splitlines() if "resolution" in line]
    assert warning.startswith(f"WARNING satcnn.inference.runner: {fine}: has a ground resolution of 0.25 m")
    assert (
        "4.0x finer than the 1 m the model was trained at" in warning
        and "rio warp in.tif resampled.tif --res 1 --resampling average" in warning
    )
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    noted = {Path(o["input"]).name: o["warnings"] for o in manifest["outputs"]}
    assert noted["near.tif"] == [] and [w.split(":")[0] for w in noted["fine.tif"]] == [
        "has a ground resolution of 0.25 m, 4.0x finer than the 1 m the model was trained at"
    ]


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")  # writing the tiles
def test_tiles_without_a_crs_or_a_geotransform_are_one_line_each(tmp_path: Path) -> None:
    ckpt = write_checkpoint(tmp_path / "sat6.ckpt")
    write_tif(tmp_path / "in" / "a.tif", height=28, width=28, crs=None, georeferenced=False)  # DeepSat-like
    with rasterio.open(tmp_path / "in" / "b.tif", "w", driver="GTiff", width=28, height=28, count=4,
                       dtype="uint8", crs="EPSG:32614") as ds:  # fmt: skip
        ds.write(np.full((4, 28, 28), 50, np.uint8))  # a CRS, and no geotransform: GDAL reads the identity
    run = _infer("--model", str(ckpt), "--input", "in", "--output", "out", "--per-tile", "--keep-going",
                 "--no-track", cwd=tmp_path)  # fmt: skip
    assert run.returncode == 1
    lines = [line for line in run.stderr.splitlines() if not line.startswith("INFO ")]
    assert [line.split(": ", 3)[:2] for line in lines] == [
        ["satcnn", "error"],
        ["satcnn", "error"],
    ], run.stderr  # no rasterio NotGeoreferencedWarning before them
    assert "has no coordinate reference system" in lines[0] and str(Path("in") / "a.tif") in lines[0]
    assert "has a CRS but no geotransform" in lines[1] and str(Path("in") / "b.tif") in lines[1]
