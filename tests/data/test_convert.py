"""Massachusetts Roads PNG pairs to (non-georeferenced) GeoTIFFs."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from PIL import Image

from satcnn.data.convert import NotGeoreferencedWarning, png_pair_to_geotiff
from satcnn.errors import DataFormatError, InputFileNotFoundError, RasterError

MASS = Path(__file__).resolve().parents[2] / "data" / "samples" / "roads" / "massachusetts"
IMAGE = MASS / "train_10078660_15_sat.png"
MASK = MASS / "train_10078660_15_map.png"


def test_massachusetts_pair(tmp_path: Path) -> None:
    with pytest.warns(NotGeoreferencedWarning, match="not georeferenced"):
        image_tif, mask_tif = png_pair_to_geotiff(IMAGE, MASK, tmp_path, resolution=1.46)
    assert image_tif == tmp_path / "images" / "train_10078660_15.tif"
    assert mask_tif == tmp_path / "masks" / "train_10078660_15.tif"
    png_rgb = np.moveaxis(np.asarray(Image.open(IMAGE).convert("RGB")), -1, 0)
    png_mask = np.asarray(Image.open(MASK))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rasterio's own NotGeoreferencedWarning on open
        with rasterio.open(image_tif) as img, rasterio.open(mask_tif) as msk:
            assert img.crs is None and msk.crs is None
            assert img.transform == msk.transform == Affine(1.46, 0, 0, 0, -1.46, 0)
            assert (img.count, img.height, img.width) == (3, 1024, 1024)
            assert img.descriptions == ("red", "green", "blue")
            assert img.dtypes == ("uint8",) * 3 and msk.dtypes == ("uint8",) and msk.count == 1
            np.testing.assert_array_equal(img.read(), png_rgb)
            mask = msk.read(1)
    assert set(np.unique(mask).tolist()) == {0, 1}
    np.testing.assert_array_equal(mask, (png_mask > 0).astype(np.uint8))
    assert 0.005 < mask.mean() < 0.2
    assert not [p for p in tmp_path.rglob(".*")]


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(InputFileNotFoundError, match="image PNG"):
        png_pair_to_geotiff(tmp_path / "x_sat.png", MASK, tmp_path)
    with pytest.raises(DataFormatError, match="resolution"):
        png_pair_to_geotiff(IMAGE, MASK, tmp_path, resolution=0)
    small = tmp_path / "small_map.png"
    Image.fromarray(np.zeros((16, 16), dtype=np.uint8)).save(small)
    with pytest.raises(RasterError, match="differs from image size"):
        png_pair_to_geotiff(IMAGE, small, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").rglob("*.tif"))
