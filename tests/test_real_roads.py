"""The real road samples load through the scene DataModule: SpaceNet (georeferenced) and
Massachusetts Roads (PNG, converted with a pixel-unit transform)."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS

from satcnn.data import RoadSceneDataModule
from satcnn.data.convert import png_pair_to_geotiff
from satcnn.errors import RasterError
from tests.conftest import SAMPLES

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
    batch = next(iter(dm.val_dataloader()))
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
