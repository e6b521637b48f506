"""The real road samples load through the scene DataModule: SpaceNet (georeferenced) and
Massachusetts Roads (PNG, converted with a pixel-unit transform)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS

from satcnn.data import RoadSceneDataModule
from satcnn.data.convert import png_pair_to_geotiff
from satcnn.data.split_scene import split_scene
from satcnn.errors import RasterError
from satcnn.pipeline.context import StageContext
from satcnn.pipeline.spec import load_spec
from satcnn.pipeline.validate import validate_run
from tests.factories import MASS_EXTRA, ROOT, SAMPLES

SPACENET = SAMPLES / "roads" / "spacenet3-vegas"
MASS = SAMPLES / "roads" / "massachusetts"


def test_spacenet_tile_keeps_its_crs_and_bounds(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    shutil.copy(SPACENET / "road_mask_input.tif", tmp_path / "images" / "vegas.tif")
    shutil.copy(SPACENET / "sample_road_raster_mask.tif", tmp_path / "masks" / "vegas.tif")
    dm = RoadSceneDataModule(str(tmp_path), patch_size=224, batch_size=4, bands=["pan"], augment=False)
    dm.setup("fit")
    assert dm.in_channels == 1 and dm.input_dtype == "uint16"
    batch = dm.on_after_batch_transfer(next(iter(dm.val_dataloader())), 0)
    assert batch["image"].shape == (4, 1, 224, 224) and batch["image"].max() > 255  # 11-bit pan, not rescaled
    assert set(np.unique(batch["mask"].numpy())) <= {0.0, 1.0}
    with rasterio.open(tmp_path / "images" / "vegas.tif") as src:
        bounds, crs = src.bounds, src.crs
    assert CRS.from_wkt(batch["crs"][0]) == crs == CRS.from_epsg(4326)
    b = batch["bounds"].numpy()
    assert (b[:, 0] >= bounds.left - 1e-9).all() and (b[:, 2] <= bounds.right + 1e-9).all()
    assert (b[:, 1] >= bounds.bottom - 1e-9).all() and (b[:, 3] <= bounds.top + 1e-9).all()
    # the mask patch is the mask raster at the patch's bounds: ~8.5 % road in the tile
    assert 0.0 <= float(batch["mask"].mean()) <= 0.5


def test_massachusetts_png_pair_through_documented_conversion(tmp_path: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, mask = png_pair_to_geotiff(
            MASS / "train_10078660_15_sat.png", MASS / "train_10078660_15_map.png", tmp_path, resolution=1.46
        )
    assert any("not georeferenced" in str(w.message) for w in caught)
    bands = ["red", "green", "blue"]
    with pytest.raises(RasterError, match="no CRS"):
        RoadSceneDataModule(str(tmp_path), patch_size=256, bands=bands).setup("fit")
    dm = RoadSceneDataModule(str(tmp_path), patch_size=256, batch_size=2, bands=bands, allow_no_crs=True)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (2, 3, 256, 256) and batch["crs"] == ["", ""]
    with rasterio.open(mask) as src:
        road = (src.read(1) > 0).mean()
    assert 0.01 < road < 0.3


def _satcnn(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "satcnn", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_split_scene_cuts_the_spacenet_pair_into_held_out_row_bands(tmp_path: Path) -> None:
    image, mask = SPACENET / "road_mask_input.tif", SPACENET / "sample_road_raster_mask.tif"
    done = _satcnn(
        "data", "split-scene", str(image), str(mask), "--out", str(tmp_path), "--parts", "fit=0.7,test=0.3"
    )
    assert done.returncode == 0, done.stderr
    with rasterio.open(image) as src, rasterio.open(mask) as msk:
        pixels, truth, profile = src.read(), msk.read(1), src.profile
        expected_rows = {"fit": (0, 910), "test": (910, 1300)}
        for part, (r0, r1) in expected_rows.items():
            for sub, whole in (("images", pixels), ("masks", truth[None])):
                with rasterio.open(tmp_path / sub / f"{image.stem}_{part}.tif") as out:
                    assert (out.height, out.width) == (r1 - r0, src.width)
                    assert out.crs == src.crs and out.dtypes[0] == (
                        profile["dtype"] if sub == "images" else "uint8"
                    )
                    # the band's own grid: its top-left pixel is the source's pixel (r0, 0)
                    assert out.transform.almost_equals(src.transform * rasterio.Affine.translation(0, r0))
                    np.testing.assert_array_equal(out.read(), whole[:, r0:r1])
    # the two parts train and test as scenes of one folder: the test band is never trained on
    dm = RoadSceneDataModule(
        str(tmp_path),
        patch_size=128,
        bands=["pan"],
        val_scenes=[f"{image.stem}_test"],
        test_scenes=[f"{image.stem}_test"],
    )
    dm.setup("fit")
    assert [dm.scenes[r.scene].name for r in dm.regions["train"]] == [f"{image.stem}_fit"]


def test_split_scene_refuses_bad_parts_and_mismatched_grids(tmp_path: Path) -> None:
    image = SPACENET / "road_mask_input.tif"
    bad = _satcnn(
        "data",
        "split-scene",
        str(image),
        str(SPACENET / "sample_road_raster_mask.tif"),
        "--out",
        str(tmp_path),
        "--parts",
        "train=1,test",
    )
    # a bad flag value is a usage error in every command (exit 2, docs/cli.md); it was 1 in `data`
    assert bad.returncode == 2 and "--parts: must look like" in bad.stderr and "Traceback" not in bad.stderr
    over = _satcnn(
        "data", "split-scene", str(image), str(image), "--out", str(tmp_path), "--parts", "a=0.6,b=0.5"
    )
    errors = [line for line in over.stderr.splitlines() if "error" in line]  # not rescaled without a word
    assert over.returncode == 2 and errors == [
        "satcnn data split-scene: error: argument --parts: must sum to 1, got 1.1 in 'a=0.6,b=0.5'"
    ]
    other = MASS / "train_10078660_15_map_orig.tif"  # 1500 x 1500: not the SpaceNet tile's grid
    mismatch = _satcnn("data", "split-scene", str(image), str(other), "--out", str(tmp_path))
    assert mismatch.returncode == 1 and "Traceback" not in mismatch.stderr
    lines = [line for line in mismatch.stderr.splitlines() if "differs" in line]
    assert len(lines) == 1 and str(other) in lines[0]
    assert not (tmp_path / "images").exists()  # nothing half-written


def test_massachusetts_pipeline_file_validates_the_imported_tiles(tmp_path: Path) -> None:
    """pipelines/roads_massachusetts.yaml names the scenes `make real-roads` imports, without a CRS:
    20 train tiles train, 5 valid tiles choose the checkpoint, 4 valid tiles are held out."""
    from satcnn.data.mnih import import_roads

    scenes = tmp_path / "scenes"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for split in ("train", "valid"):  # as `make real-roads` does
            import_roads(MASS_EXTRA / split, scenes)
        png_pair_to_geotiff(
            MASS / "train_10078660_15_sat.png", MASS / "train_10078660_15_map.png", scenes, 1.46, nodata=255
        )
    spec = load_spec(ROOT / "pipelines" / "roads_massachusetts.yaml", [f"validate.scenes={scenes}"])
    settings = dict(spec.stages["validate"])
    out = validate_run(StageContext(spec, "validate", settings, {}, tracker=None), None)  # type: ignore[arg-type]
    held = sorted(Path(p).stem for p in out["infer_inputs"])
    val = out["data_args"]["data.init_args.val_scenes"]
    assert held == ["10", "12", "13", "14"] and sorted(out["truths"]) == sorted(out["infer_inputs"])
    assert sorted(val) == ["2", "4", "5", "7", "9"]
    train = {p.stem for p in (scenes / "images").glob("*.tif")} - set(held) - set(val)
    assert len(train) == 20 and "train_10078660_15" in train  # the 19 shared tiles and the sample
    with rasterio.open(scenes / "images" / "10.tif") as src:
        assert (src.width, src.height, src.crs) == (1500, 1500, None)
    assert spec.stages["evaluate"].get("graph") is True  # APLS on the held-out tiles
    settings["allow_no_crs"] = False
    with pytest.raises(RasterError, match="CRS"):
        validate_run(StageContext(spec, "validate", settings, {}, tracker=None), None)  # type: ignore[arg-type]


def test_split_scene_keeps_an_internal_mask(tmp_path: Path) -> None:
    from rasterio.transform import from_origin

    from satcnn.data.split_scene import parse_parts
    from satcnn.errors import DataFormatError

    profile = {"driver": "GTiff", "width": 40, "height": 30, "crs": CRS.from_epsg(32633)}
    profile["transform"] = from_origin(500_000, 4_600_000, 1, 1)
    masked = np.full((30, 40), 255, dtype=np.uint8)
    masked[:, 30:] = 0  # the right quarter is masked out
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        with rasterio.open(tmp_path / "img.tif", "w", count=3, dtype="uint8", **profile) as dst:
            dst.write(np.full((3, 30, 40), 9, dtype=np.uint8))
            dst.write_mask(masked)
        with rasterio.open(tmp_path / "msk.tif", "w", count=1, dtype="uint8", **profile) as dst:
            dst.write(np.zeros((1, 30, 40), dtype=np.uint8))
        split_scene(
            tmp_path / "img.tif", tmp_path / "msk.tif", tmp_path / "out", [("a", 1), ("b", 1)], axis="cols"
        )
    with rasterio.open(tmp_path / "out" / "images" / "img_b.tif") as part:
        np.testing.assert_array_equal(part.read_masks(1), masked[:, 20:])
    with pytest.raises(DataFormatError, match="parts must look like"):
        parse_parts("train=inf,test=1")
