"""``satcnn infer`` describes its outputs as a STAC collection that a real client (odc-stac) opens.

pystac's ``validate()`` fetches the extension schemas from the internet, which CI has not; the
fields are checked directly instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import odc.stac
import pystac
import pytest
import rasterio
from rasterio.warp import transform_bounds

from satcnn.inference import InferenceOptions, run_inference
from satcnn.io.stac_collection import write_output_collection
from satcnn.io.stac_outputs import Provenance
from tests.factories import INFER, NAIP, ROOT, VEGAS, crop, pan_road_checkpoint, write_checkpoint


def _road_checkpoint(path: Path) -> Path:
    return pan_road_checkpoint(path)


def _infer_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", INFER, *args], env=env, capture_output=True, text=True)


def _items(collection: Path) -> dict[str, pystac.Item]:
    col = pystac.Collection.from_file(str(collection))
    return {i.id: i for i in col.get_items()}


def _same_pixels_in_odc_stac(items: dict[str, pystac.Item]) -> None:
    """``odc.stac.load`` of each item on its own grid gives the COG's pixels, read by rasterio."""
    for item in items.values():
        loaded = odc.stac.load([item], bands=["data"], chunks=None)
        with rasterio.open(item.assets["data"].get_absolute_href()) as ds:
            pixels, crs, transform = ds.read(1), ds.crs, ds.transform
        assert loaded.odc.crs == crs and tuple(loaded.odc.geobox.affine)[:6] == tuple(transform)[:6]
        np.testing.assert_array_equal(loaded["data"].values[0], pixels)


@pytest.mark.slow
def test_road_outputs_as_stac_open_in_odc_stac_and_follow_reruns(tmp_path: Path) -> None:
    ckpt = _road_checkpoint(tmp_path / "road.ckpt")
    tiles = tmp_path / "tiles"
    tiles.mkdir()
    a = crop(VEGAS, tiles / "a.tif", 96)
    crop(VEGAS, tiles / "b.tif", 64)
    out = tmp_path / "out"
    common = ["--model", str(ckpt), "--output", str(out), "--output-type", "both", "--threshold", "0.5"]
    common += ["--window", "64", "--margin", "8", "--no-track", "--no-progress"]
    done = _infer_cli("--input", str(tiles), *common)
    assert done.returncode == 0, done.stderr
    assert f"stac: {out / 'collection.json'}" in done.stdout
    items = _items(out / "collection.json")
    assert set(items) == {"a", "a_mask", "b", "b_mask"}

    prob, mask = items["a"], items["a_mask"]
    with rasterio.open(out / "a.tif") as ds:
        bounds = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds)
        assert prob.properties["proj:code"] == f"EPSG:{ds.crs.to_epsg()}"
        assert prob.properties["proj:shape"] == [ds.height, ds.width]
        assert prob.properties["proj:transform"] == list(ds.transform)[:6]
    assert prob.bbox == pytest.approx(list(bounds))
    assert prob.geometry["type"] == "Polygon"  # type: ignore[index]
    data = prob.assets["data"].to_dict()
    assert data["roles"] == ["data"] and data["type"] == pystac.MediaType.COG
    assert data["raster:bands"] == [{"data_type": "uint8", "nodata": 255.0, "scale": 1 / 254, "offset": 0.0}]
    raw = (out / "a.tif").read_bytes()
    assert data["file:size"] == len(raw) and data["file:checksum"] == "1220" + hashlib.sha256(raw).hexdigest()
    mask_asset = mask.assets["data"].to_dict()
    assert [(c["value"], c["name"]) for c in mask_asset["classification:classes"]] == [
        (0, "background"),
        (1, "road"),
        (255, "nodata"),
    ]
    links = {link.rel: link.get_absolute_href() for link in prob.links}
    assert links["derived_from"] == str(a.resolve()) and links["via"] == str(ckpt)
    assert prob.properties["satcnn:model"]["digest"].startswith("sha256:")
    _same_pixels_in_odc_stac(items)

    # rerun: b's outputs removed, only a given (skipped): a's items are kept as they were, b's dropped
    kept = (out / "items" / "a.json").read_text()
    (out / "b.tif").unlink()
    (out / "b_mask.tif").unlink()
    again = run_inference(
        InferenceOptions(
            ckpt, a, out, output_type="both", threshold=0.5, window=64, margin=8, track=False, progress=False
        )
    )
    assert [r.status for r in again.results] == ["skipped"]
    assert set(_items(out / "collection.json")) == {"a", "a_mask"}
    assert (out / "items" / "a.json").read_text() == kept and not (out / "items" / "b.json").exists()
    # an output rewritten with other settings gets a new item
    run_inference(
        InferenceOptions(
            ckpt, a, out, output_type="mask", threshold=0.7, window=64, margin=8, track=False, progress=False
        )
    )
    redone = _items(out / "collection.json")
    assert (
        redone["a"].properties["satcnn:output"] == "mask"
        and redone["a"].properties["satcnn:threshold"] == 0.7
    )


def test_class_map_item_has_classes_and_opens_in_odc_stac(tmp_path: Path) -> None:
    ckpt = write_checkpoint(tmp_path / "sat6.ckpt")
    tile = crop(NAIP, tmp_path / "tile.tif", 120)
    out = tmp_path / "out"
    report = run_inference(InferenceOptions(ckpt, tile, out, stride=28, track=False, progress=False))
    assert report.stac_collection == out / "collection.json"
    items = _items(out / "collection.json")
    assert set(items) == {"tile"}
    asset = items["tile"].assets["data"].to_dict()
    with rasterio.open(out / "tile.tif") as ds:
        table = ds.colormap(1)
        names = json.loads(ds.tags()["CLASS_NAMES"])
        assert items["tile"].bbox == pytest.approx(list(transform_bounds(ds.crs, "EPSG:4326", *ds.bounds)))
    classes = asset["classification:classes"]
    assert [c["title"] for c in classes if not c.get("nodata")] == names
    assert all(c["color_hint"] == "{:02X}{:02X}{:02X}".format(*table[c["value"]][:3]) for c in classes[:-1])
    assert classes[-1] == {"value": 255, "name": "nodata", "nodata": True}
    assert asset["raster:bands"][0]["data_type"] == "uint8" and "scale" not in asset["raster:bands"][0]
    _same_pixels_in_odc_stac(items)


def test_outputs_without_crs_get_no_item(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ckpt = write_checkpoint(tmp_path / "sat6.ckpt")
    tile = crop(NAIP, tmp_path / "patch.tif", 64, crs=None)
    out = tmp_path / "out"
    caplog.set_level("INFO", logger="satcnn.io.stac_collection")
    report = run_inference(InferenceOptions(ckpt, tile, out, allow_no_crs=True, track=False, progress=False))
    assert (out / "patch.tif").exists() and report.stac_collection is None
    assert not (out / "collection.json").exists()
    assert "not in the STAC catalogue" in caplog.text


def test_items_link_the_model_card_and_the_mlflow_run(tmp_path: Path) -> None:
    ckpt = _road_checkpoint(tmp_path / "road.ckpt")
    tile = crop(VEGAS, tmp_path / "tile.tif", 64)
    out = tmp_path / "out"
    run_inference(InferenceOptions(ckpt, tile, out, window=64, margin=8, track=False, progress=False))
    card = tmp_path / "road.onnx.json"
    card.write_text("{}")
    prov = Provenance(
        "models:/roads/3", ckpt, "sha256:x", card, mlflow_run_id="abc123", tracking_uri="sqlite:///m.db"
    )
    (out / "tile.tif").touch()  # rewritten since its item: the item is made again, with this provenance
    write_output_collection(out, [(str(tile), [out / "tile.tif"])], prov)
    item = _items(out / "collection.json")["tile"]
    links = {(link.rel, link.media_type): link.href for link in item.links}
    assert links[("derived_from", "application/geo+json")] == str(card)
    assert links[("related", None)] == "runs:/abc123"
    assert item.properties["satcnn:mlflow"] == {"run_id": "abc123", "tracking_uri": "sqlite:///m.db"}
    assert item.properties["satcnn:model"]["uri"] == "models:/roads/3"
