"""The pixel contract (satcnn.io.reader): the validity rule, the alpha rule, the fill, the reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.enums import ColorInterp
from rasterio.windows import Window

from satcnn.errors import RasterError
from satcnn.io.raster import open_raster
from satcnn.io.reader import (
    FILL_VALUE,
    ValidityRule,
    WindowReader,
    accepts_bands,
    alpha_mask_band,
    validity_rule,
)
from tests.factories import write_tif

CI = ColorInterp
RGBA = (CI.red, CI.green, CI.blue, CI.alpha)


def _rgba(path: Path) -> tuple[Path, np.ndarray]:
    """A uint8 RGBA raster (GDAL tags a 4-band uint8 GTiff's band 4 alpha) with alpha 0 in a block."""
    data = np.random.default_rng(0).integers(1, 200, (4, 12, 10)).astype(np.uint8)
    data[3, 2:5, 3:7] = 0
    write_tif(path, data)
    with rasterio.open(path) as ds:
        assert ds.colorinterp == RGBA
    return path, data


# -- the alpha rule ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("colorinterp", "bands", "expected"),
    [
        (RGBA, 3, 4),  # RGBA for an RGB model: alpha is the mask
        (RGBA, 4, None),  # the model consumes band 4: data, no mask
        ((CI.red, CI.green, CI.blue, CI.undefined, CI.alpha), 4, 5),  # RGBN + alpha, 4-band model
        ((CI.red, CI.green, CI.blue, CI.undefined, CI.alpha), 5, None),
        ((CI.gray, CI.alpha), 1, 2),
        ((CI.red, CI.alpha, CI.blue, CI.undefined), 4, None),  # alpha among the consumed bands
        ((CI.red, CI.green, CI.blue), 3, None),
        ((CI.red, CI.green, CI.blue, CI.undefined, CI.alpha), 3, 5),  # first alpha beyond
    ],
)
def test_alpha_masks_only_beyond_the_consumed_bands(
    colorinterp: tuple[ColorInterp, ...], bands: int, expected: int | None
) -> None:
    assert alpha_mask_band(colorinterp, bands) == expected


def test_accepts_bands_only_extra_alpha() -> None:
    assert accepts_bands(RGBA, 4) and accepts_bands(RGBA, 3)
    assert not accepts_bands(RGBA, 2)  # band 3 (blue) would be dropped
    assert not accepts_bands(RGBA, 5)
    assert not accepts_bands((CI.red, CI.green, CI.blue, CI.undefined), 3)


def test_rgba_for_a_three_band_model_is_masked_by_alpha(tmp_path: Path) -> None:
    path, data = _rgba(tmp_path / "rgba.tif")
    with rasterio.open(path) as ds:
        reader = WindowReader(ds, bands=3)
        assert reader.rule == ValidityRule(3, (None, None, None), (), 4)
        x, valid = reader.read(Window(0, 0, 10, 12))
    assert x.shape == (3, 12, 10)
    np.testing.assert_array_equal(valid, data[3] > 0)
    assert (x[:, ~valid] == FILL_VALUE).all()
    np.testing.assert_array_equal(x[:, valid], data[:3][:, valid].astype(np.float32))


def test_alpha_band_the_model_consumes_is_data(tmp_path: Path) -> None:
    path, data = _rgba(tmp_path / "rgba.tif")
    with rasterio.open(path) as ds:
        reader = WindowReader(ds, bands=["red", "green", "blue", "nir"])
        assert reader.rule.all_valid
        x, valid = reader.read(Window(0, 0, 10, 12))
    assert valid.all()  # zeros in band 4 are NIR values, not nodata
    np.testing.assert_array_equal(x, data.astype(np.float32))


def test_five_band_rgbn_alpha_for_a_four_band_model(tmp_path: Path) -> None:
    data = np.random.default_rng(1).integers(1, 200, (5, 9, 11)).astype(np.uint8)
    data[3, 0, :] = 0  # NIR zeros: valid
    data[4, 4:6, 2:9] = 0  # alpha 0: invalid
    interp = (CI.red, CI.green, CI.blue, CI.undefined, CI.alpha)
    path = write_tif(tmp_path / "rgbna.tif", data, colorinterp=interp, photometric="RGB", alpha="UNSPECIFIED")
    with rasterio.open(path) as ds:
        assert ds.colorinterp == interp
        x, valid = WindowReader(ds, bands=4).read(Window(0, 0, 11, 9))
    np.testing.assert_array_equal(valid, data[4] > 0)
    assert x.shape == (4, 9, 11) and (x[:, ~valid] == FILL_VALUE).all()
    np.testing.assert_array_equal(x[:, valid], data[:4][:, valid].astype(np.float32))


# -- the nodata rule, internal masks, the edge -------------------------------------------------


def test_read_window_boundless_and_nodata(tmp_path: Path) -> None:
    data = np.arange(2 * 5 * 6, dtype="uint16").reshape(2, 5, 6) + 1
    data[:, 1, 2] = 9999  # all bands nodata -> invalid, zero-filled
    data[0, 3, 3] = 9999  # one band only -> still valid
    p = write_tif(tmp_path / "n.tif", data, nodata=9999)
    with rasterio.open(p) as ds:
        reader = WindowReader(ds)
        assert reader.rule == ValidityRule(2, (9999.0, 9999.0), (), None)
        x, valid = reader.read(Window(-2, -1, 10, 8))
    assert x.shape == (2, 8, 10) and x.dtype == np.float32
    expected_x = data.astype(np.float32)
    expected_x[:, 1, 2] = 0
    np.testing.assert_array_equal(x[:, 1:6, 2:8], expected_x)
    expected = np.zeros((8, 10), bool)
    expected[1:6, 2:8] = True
    expected[1 + 1, 2 + 2] = False
    np.testing.assert_array_equal(valid, expected)
    assert x[:, 0].sum() == 0 and x[:, :, 8:].sum() == 0


def test_nan_nodata_of_float_rasters(tmp_path: Path) -> None:
    data = np.full((2, 4, 5), 7.5, np.float32)
    data[:, 0, 0] = np.nan  # all bands: invalid
    data[1, 2, 2] = np.nan  # one band: valid, the NaN stays
    with rasterio.open(write_tif(tmp_path / "f.tif", data, nodata=float("nan"))) as ds:
        x, valid = WindowReader(ds).read(Window(0, 0, 5, 4))
    assert not valid[0, 0] and valid.sum() == 19
    assert x[0, 0, 0] == FILL_VALUE and x[1, 0, 0] == FILL_VALUE
    assert np.isnan(x[1, 2, 2]) and x[0, 2, 2] == 7.5


def test_read_window_internal_mask(tmp_path: Path) -> None:
    data = np.random.default_rng(0).integers(0, 200, (3, 12, 10)).astype(np.uint8)
    p = write_tif(tmp_path / "m.tif", data)
    mask = np.full((12, 10), 255, np.uint8)
    mask[2:5, 3:7] = 0
    with rasterio.open(p, "r+") as ds:
        ds.write_mask(mask)
    with rasterio.open(p) as ds:
        reader = WindowReader(ds)
        assert reader.rule.mask_bands == (1,)
        x, valid = reader.read(Window(0, 0, 10, 12))
    np.testing.assert_array_equal(valid, mask > 0)
    assert x[:, 2:5, 3:7].sum() == 0 and x[:, 6:].sum() > 0


def test_nodata_and_internal_mask_both_count(tmp_path: Path) -> None:
    data = np.full((2, 6, 6), 5, np.uint8)
    data[:, 0, 0] = 255
    p = write_tif(tmp_path / "both.tif", data, nodata=255)
    mask = np.full((6, 6), 255, np.uint8)
    mask[5, 5] = 0
    with rasterio.open(p, "r+") as ds:
        ds.write_mask(mask)
    with rasterio.open(p) as ds:
        _, valid = WindowReader(ds).read(Window(0, 0, 6, 6))
    assert not valid[0, 0] and not valid[5, 5] and valid.sum() == 34


def test_read_window_all_valid_inside(tmp_path: Path) -> None:
    data = np.random.default_rng(0).integers(0, 200, (2, 12, 10)).astype(np.uint8)
    p = write_tif(tmp_path / "v.tif", data)
    with rasterio.open(p) as ds:
        reader = WindowReader(ds)
        assert reader.rule.all_valid
        x, valid = reader.read(Window(2, 3, 5, 4))
        np.testing.assert_array_equal(x, ds.read(window=Window(2, 3, 5, 4)).astype(np.float32))
    assert valid.shape == (4, 5) and valid.all()


def test_window_outside_the_raster_is_all_fill(tmp_path: Path) -> None:
    data = np.ones((2, 4, 4), np.uint8)
    with rasterio.open(write_tif(tmp_path / "o.tif", data)) as ds:
        x, valid = WindowReader(ds).read(Window(10, 10, 3, 3), dtype="uint8")
    assert x.dtype == np.uint8 and not valid.any() and (x == FILL_VALUE).all()


def test_decimated_reads_apply_the_same_rule(tmp_path: Path) -> None:
    data = np.full((1, 8, 8), 3, np.uint8)
    data[0, :4] = 0  # nodata in the top half
    with rasterio.open(write_tif(tmp_path / "d.tif", data, nodata=0)) as ds:
        reader = WindowReader(ds)
        x, valid = reader.read(Window(0, 0, 8, 8), out_shape=(4, 4))
        with pytest.raises(ValueError, match="inside the raster"):
            reader.read(Window(-1, 0, 8, 8), out_shape=(4, 4))
    assert x.shape == (1, 4, 4)
    np.testing.assert_array_equal(valid, np.repeat([[False], [False], [True], [True]], 4, axis=1))
    assert (x[0, :2] == FILL_VALUE).all() and (x[0, 2:] == 3).all()


def test_more_bands_than_the_file_has(tmp_path: Path) -> None:
    p = write_tif(tmp_path / "two.tif", np.ones((2, 4, 4), np.uint8))
    with (
        rasterio.open(p) as ds,
        pytest.raises(RasterError, match=r"two\.tif.*model reads 3 bands; file has 2"),
    ):
        validity_rule(ds, 3)


# -- open_raster follows the alpha rule ------------------------------------------------------


def test_open_raster_accepts_extra_alpha_only(tmp_path: Path) -> None:
    path, _ = _rgba(tmp_path / "rgba.tif")
    assert open_raster(path, bands=3).count == 4
    assert open_raster(path, bands=4).count == 4
    rgbn = write_tif(
        tmp_path / "rgbn.tif",
        np.ones((4, 4, 4), np.uint8),
        photometric="RGB",
        alpha="UNSPECIFIED",
    )
    with pytest.raises(RasterError, match=r"rgbn\.tif: model expects 3 bands; file has 4 and the extra"):
        open_raster(rgbn, bands=3)
