"""Band selection and radiometry below the CLI: specs, name matching, content checks, percentiles,
the checkpoint's band record, and scene DataModules on BGRN uint16 and float64 NaN-nodata scenes."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import torch
from rasterio.enums import ColorInterp
from rasterio.windows import Window

from satcnn.data.scenes import RoadSceneDataModule
from satcnn.errors import ConfigError, ModelError, RasterError
from satcnn.io.bands import check_band_content, parse_band_spec, select_bands
from satcnn.io.radiometry import PERCENTILES, normal_percentiles, parse_rescale, rescale_map
from satcnn.io.reader import WindowReader
from satcnn.models.checkpoint import (
    CHECKPOINT_KEY,
    CheckpointMeta,
    ModelSpec,
    read_checkpoint,
    save_checkpoint,
)
from satcnn.models.registry import create_model
from tests import factories
from tests.factories import RGBA, SAT6_TIFS, road_bands

# 1 m pixels; uint8 bands 1-3 tagged R, G, B as synth-roads writes them
write_tif = partial(factories.write_tif, res=1.0, rgb=True)


# -- specs and name matching -------------------------------------------------------------------------
def test_band_specs_parse_indexes_or_names_and_refuse_mixtures() -> None:
    assert parse_band_spec("4, 3,2,5") == [4, 3, 2, 5]
    assert parse_band_spec(["red", "Green"]) == ["red", "Green"]
    assert parse_band_spec([3, 1]) == [3, 1]
    assert parse_band_spec(None) is None
    for bad, problem in [("1,red", "all indexes or all names"), ("0,1", "start at 1"), ("1,1", "twice")]:
        with pytest.raises(ValueError, match=problem):
            parse_band_spec(bad)
    with pytest.raises(ValueError, match="twice"):
        parse_band_spec("nir,near-infrared")  # one band under an alias
    with pytest.raises(ValueError, match="separated by commas"):
        parse_band_spec("1,,2")


def test_names_match_descriptions_then_colour_interpretation_with_aliases(tmp_path: Path) -> None:
    eight = write_tif(
        tmp_path / "wv3.tif",
        road_bands(count=8),
        descriptions=["Coastal", "Blue", "Green", "Yellow", "Red", "Red Edge", "NIR1", "NIR2"],
    )
    bgrn = write_tif(
        tmp_path / "bgrn.tif", road_bands(), colorinterp=RGBA
    )  # tags say R,G,B,A; no descriptions
    with rasterio.open(eight) as ds:
        assert select_bands(ds, ["red", "green", "blue", "nir"]).indexes == (5, 3, 2, 7)
        assert select_bands(ds, ["R", "g", "B", "near_infrared"]).indexes == (5, 3, 2, 7)
        sel = select_bands(ds, [5, 3, 2, 7])
        assert sel.names == ("Red", "Green", "Blue", "NIR1")
        with pytest.raises(RasterError, match=r"wv3\.tif: no band is named 'swir'.*band 8 \(NIR2\)"):
            select_bands(ds, ["red", "swir"])
        with pytest.raises(RasterError, match=r"wv3\.tif: --bands asks for band 9; the file has 8 bands"):
            select_bands(ds, [1, 9])
    with rasterio.open(bgrn) as ds:
        assert select_bands(ds, ["blue", "alpha"]).indexes == (3, 4)  # colour interpretation


# -- content checks on a band's overview -------------------------------------------------------------
def test_band_content_check_refuses_constant_and_mask_only_bands(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = road_bands()
    const = data.copy()
    const[3] = 255
    mask_only = data.copy()
    mask_only[3] = np.where(np.arange(64) < 20, 0, 255)[None, :]
    cases = {
        "rgb_alpha.tif": (const, r"band 4 \(alpha\) holds only the value 255 .* transparency mask"),
        "rgb_mask.tif": (
            mask_only,
            r"band 4 \(alpha\) is tagged alpha and holds only mask values \(0, 255\)",
        ),
    }
    for name, (arr, problem) in cases.items():
        path = write_tif(tmp_path / name, arr, colorinterp=RGBA)
        # the way out names bands the file has: a 4-band file has no other band to select
        hint = r"no other data band to select \(4 bands\)"
        with rasterio.open(path) as ds, pytest.raises(RasterError, match=rf"{name}: {problem}.*{hint}"):
            check_band_content(ds, [1, 2, 3, 4], path)
    five = write_tif(tmp_path / "five.tif", np.concatenate([const, data[:1]]))
    with rasterio.open(five) as ds, pytest.raises(RasterError, match=r"e\.g\. --bands 1,2,3,5\)"):
        check_band_content(ds, [1, 2, 3, 4], five)
    one = write_tif(tmp_path / "one.tif", data[:, :1, :1])
    with rasterio.open(one) as ds, pytest.raises(RasterError, match=r"1 x 1 pixels .*too small"):
        check_band_content(ds, [1, 2, 3, 4], one)
    # a constant band without alpha tag (a zero NIR) is refused too; a varying alpha band is data
    zero_nir = data.copy()
    zero_nir[3] = 0
    path = write_tif(tmp_path / "zero_nir.tif", zero_nir)
    with rasterio.open(path) as ds, pytest.raises(RasterError, match=r"band 4 holds only the value 0"):
        check_band_content(ds, [1, 2, 3, 4], path)
    with rasterio.open(path) as ds:
        check_band_content(ds, [1, 2, 3], path)  # band 4 is not consumed
    # the real SAT-6 patch GeoTIFFs tag NIR as alpha and hold varying values: used, with a warning
    patch = next(iter(sorted((SAT6_TIFS / "trn").rglob("*.tif"))))
    with caplog.at_level(logging.WARNING), rasterio.open(patch) as ds:
        assert ds.colorinterp[3] == ColorInterp.alpha
        check_band_content(ds, [1, 2, 3, 4], patch)
    assert any("band 4 (alpha) is tagged alpha but holds varying values" in r.message for r in caplog.records)


def test_an_unselected_alpha_band_masks_a_selection(tmp_path: Path) -> None:
    data = road_bands(count=5)
    data[4] = 255
    data[4, :10] = 0  # alpha beyond the selection: the top 10 rows are transparent
    path = write_tif(
        tmp_path / "a.tif", data, colorinterp=[*RGBA[:3], ColorInterp.undefined, ColorInterp.alpha]
    )
    with rasterio.open(path) as ds:
        x, valid = WindowReader(ds, indexes=[3, 2, 1, 4]).read(Window(0, 0, 64, 64))
    np.testing.assert_array_equal(x[:, 10:], data[[2, 1, 0, 3], 10:].astype(np.float32))
    assert not valid[:10].any() and valid[10:].all() and (x[:, :10] == 0).all()


# -- radiometry -------------------------------------------------------------------------------------
def test_rescale_specs_and_maps() -> None:
    assert parse_rescale("none") == "none" and parse_rescale(" Percentile ") == "percentile"
    assert parse_rescale("0,2047") == (0.0, 2047.0)
    for bad in ("2047,0", "1,2,3", "abc", "nan,1"):
        with pytest.raises(ValueError, match="none, percentile or MIN,MAX"):
            parse_rescale(bad)
    train = [[10.0, 20.0, 200.0, 220.0]]
    # percentile: the source's 2-98% range lands on the training 2-98% range
    m = rescale_map("percentile", [[0.0, 100.0, 1700.0, 1800.0]], train, "uint8")
    assert m is not None
    x = np.array([[[100.0, 1700.0, 5000.0]]], np.float32)
    np.testing.assert_allclose(m.apply(x.copy())[0, 0], [20.0, 200.0, 255.0])  # clipped to uint8
    # MIN,MAX: onto 0-255 for a uint8 model, onto the 1-99% training range otherwise
    m8 = rescale_map((0.0, 2047.0), [], train, "uint8")
    assert m8 is not None
    np.testing.assert_allclose(m8.apply(np.array([[[0.0, 2047.0]]], np.float32))[0, 0], [0.0, 255.0])
    mf = rescale_map((0.0, 1.0), [], train, "float32")
    assert mf is not None and mf.low is None
    np.testing.assert_allclose(mf.apply(np.array([[[0.0, 1.0]]], np.float32))[0, 0], [10.0, 220.0])
    assert rescale_map("none", [], train, "uint8") is None
    p = normal_percentiles([100.0], [10.0])[0]
    assert p == pytest.approx([76.737, 79.463, 120.537, 123.263], abs=1e-3)


# -- the checkpoint's band record ---------------------------------------------------------------------
def _meta(**extra: Any) -> CheckpointMeta:
    return CheckpointMeta(
        task="segmentation",
        model=ModelSpec("unet", {"in_channels": 4, "num_classes": 1, "base_filters": 4, "depth": 2}),
        bands=["red", "green", "blue", "nir"],
        mean=[100.0] * 4,
        std=[30.0] * 4,
        **extra,
    )


def test_checkpoint_records_bands_and_percentiles_and_older_files_load(tmp_path: Path) -> None:
    net = create_model("unet", in_channels=4, num_classes=1, base_filters=4, depth=2)
    pcts = [[1.0, 2.0, 98.0, 99.0]] * 4
    meta = _meta(
        band_sources=[3, 2, 1, 4], band_colorinterp=["blue", "green", "red", "undefined"], percentiles=pcts
    )
    path = save_checkpoint(tmp_path / "new.ckpt", net, meta)
    back = read_checkpoint(path).meta
    assert (back.band_sources, back.band_colorinterp, back.percentiles) == (
        [3, 2, 1, 4],
        ["blue", "green", "red", "undefined"],
        pcts,
    )
    # a format-2 file written before these fields existed loads with empty records
    raw = torch.load(path, weights_only=True)
    for key in ("band_sources", "band_colorinterp", "percentiles"):
        del raw[CHECKPOINT_KEY][key]
    torch.save(raw, tmp_path / "old.ckpt")
    old = read_checkpoint(tmp_path / "old.ckpt").meta
    assert (old.band_sources, old.band_colorinterp, old.percentiles) == ([], [], [])
    raw[CHECKPOINT_KEY]["percentiles"] = [[1.0, 2.0, 3.0]] * 4
    torch.save(raw, tmp_path / "bad.ckpt")
    with pytest.raises(ModelError, match=r"bad\.ckpt: percentiles must hold 4 values"):
        read_checkpoint(tmp_path / "bad.ckpt")


# -- scene DataModules: band selection, uint16 and float inputs ---------------------------------------
def _scene_root(root: Path, image: np.ndarray, **kw: Any) -> Path:
    write_tif(root / "images" / "s.tif", image, **kw)
    mask = (np.indices(image.shape[1:])[0] % 7 == 0).astype(np.uint8)
    write_tif(root / "masks" / "s.tif", mask[None])
    return root


def _windows(batch: dict[str, Any]) -> list[tuple[int, int]]:
    """(row, col) of each sample's window, from its bounds (origin 500000, 4600000; 1 m pixels)."""
    return [(int(4_600_000 - b[3]), int(b[0] - 500_000)) for b in batch["bounds"].tolist()]


def test_scene_datamodule_selects_bgrn_uint16_bands_and_records_percentiles(tmp_path: Path) -> None:
    rgbn = (road_bands(96, 96).astype(np.uint16) * 8).astype(np.uint16)  # 11-bit values
    bgrn = rgbn[[2, 1, 0, 3]]
    root = _scene_root(tmp_path / "bgrn", bgrn, descriptions=["Blue", "Green", "Red", "NIR"])
    specs: list[tuple[list[str | int] | str, list[str]]] = [
        (["red", "green", "blue", "nir"], ["red", "green", "blue", "nir"]),
        ("3,2,1,4", ["Red", "Green", "Blue", "NIR"]),
        ([3, 2, 1, 4], ["Red", "Green", "Blue", "NIR"]),
    ]
    for bands, names in specs:
        dm = RoadSceneDataModule(
            str(root), patch_size=32, val_overlap=8, batch_size=4, bands=bands, augment=False
        )
        dm.setup("fit")
        assert (dm.band_sources, dm.bands, dm.input_dtype) == ([3, 2, 1, 4], names, "uint16")
        assert dm.band_colorinterp == ["undefined", "undefined", "gray", "undefined"]  # GDAL's uint16 tags
        batch = next(iter(dm.val_dataloader()))
        for image, (r, c) in zip(batch["image"].numpy(), _windows(batch), strict=True):
            np.testing.assert_array_equal(image, rgbn[:, r : r + 32, c : c + 32].astype(np.float32))
    mean, _ = dm.band_stats()
    pcts = np.array(dm.band_percentiles())
    train = rgbn[:, : dm.regions["train"][0].height].reshape(4, -1)
    np.testing.assert_allclose(mean, train.mean(axis=1), rtol=1e-6)
    expected = np.percentile(train.astype(np.float64), PERCENTILES, axis=1).T
    np.testing.assert_allclose(pcts, expected, atol=0.02 * expected.max())  # a 16k-pixel sample per block
    assert pcts[:, 3].max() <= 2047 and pcts[:, 3].max() > 255  # the 11-bit range, not uint8's
    with pytest.raises(ConfigError, match="do not all carry these names"):
        RoadSceneDataModule(str(root), patch_size=32, val_overlap=8, bands=["red", "green", "swir"]).setup(
            "fit"
        )


def test_scene_datamodule_trains_on_float64_with_nan_nodata(tmp_path: Path) -> None:
    image = road_bands(96, 96).astype(np.float64) / 255.0
    image[:, :40, :40] = np.nan
    root = _scene_root(tmp_path / "f64", image, nodata=float("nan"))
    dm = RoadSceneDataModule(str(root), patch_size=32, val_overlap=8, batch_size=16, augment=False)
    dm.setup("fit")
    mean, std = dm.band_stats()
    assert np.isfinite(mean).all() and np.isfinite(std).all() and max(mean) < 1.0
    assert np.isfinite(dm.band_percentiles()).all() and dm.input_dtype == "float64"
    batch = next(iter(dm.val_dataloader()))
    nan_seen = False
    for x, valid, (r, c) in zip(batch["image"].numpy(), batch["valid"].numpy(), _windows(batch), strict=True):
        ref = image[:, r : r + 32, c : c + 32].astype(np.float32)
        nan = np.isnan(ref[0])
        nan_seen |= bool(nan.any())
        assert (x[:, nan] == 0).all() and (valid[0, nan] == 0).all()  # NaN nodata: fill 0, invalid
        np.testing.assert_array_equal(x[:, ~nan], ref[:, ~nan])
    assert nan_seen
