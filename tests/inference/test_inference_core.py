"""Tests for the window grid, streaming predict_raster and classify_raster."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import from_origin
from rio_cogeo.cogeo import cog_validate
from torch import nn

from satcnn.data.samplers import GridWindowSampler, Region
from satcnn.errors import ConfigError, ModelError, RasterError
from satcnn.inference.classify import class_map_transform, classify_raster
from satcnn.inference.segment import predict_raster
from satcnn.inference.windows import axis_spans, tile_grid
from satcnn.io.road_mask import UINT8_SCALE
from tests.factories import noise_bands, patch_classifier, scaled, seg_model, write_tif

CRS = "EPSG:32633"
TRANSFORM = from_origin(500_000.0, 4_600_000.0, 10.0, 10.0)


def whole(model: nn.Module, data: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return model(torch.from_numpy(data.astype(np.float32))[None])[0, 0].numpy()


# -- window grid -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "margin", "multiple"), [(64, 8, 1), (64, 0, 1), (32, 15, 1), (48, 8, 16), (16, 2, 16)]
)
def test_cores_tile_every_pixel_once(window: int, margin: int, multiple: int) -> None:
    for height, width in [(1, 1), (5, 70), (31, 17), (48, 48), (49, 97), (130, 64), (200, 211)]:
        cover = np.zeros((height, width), np.int32)
        tiles = tile_grid(height, width, window, margin, multiple)
        shapes = {(int(t.read.height), int(t.read.width)) for t in tiles}
        assert len(shapes) == 1, "all windows must share one shape for batching"
        (wh, ww) = shapes.pop()
        assert wh % multiple == 0 and ww % multiple == 0 and wh <= window and ww <= window
        for t in tiles:
            r0, c0 = int(t.core.row_off), int(t.core.col_off)
            cover[r0 : r0 + int(t.core.height), c0 : c0 + int(t.core.width)] += 1
            rs, cs = t.core_slices
            # core inside the read window, with >= margin of context unless at the raster edge
            assert 0 <= rs.start <= rs.stop <= wh and 0 <= cs.start <= cs.stop <= ww
            assert rs.start >= margin or r0 == 0
            assert cs.start >= margin or c0 == 0
            assert wh - rs.stop >= margin or r0 + int(t.core.height) == height
            assert ww - cs.stop >= margin or c0 + int(t.core.width) == width
            # reads only leave the raster when the raster is shorter than the window
            assert t.read.row_off >= 0 and t.read.col_off >= 0
            assert t.read.row_off + wh <= max(height, wh) and t.read.col_off + ww <= max(width, ww)
        np.testing.assert_array_equal(cover, 1)


def test_axis_spans_short_axis_is_one_padded_window() -> None:
    assert axis_spans(20, 64, 8, 16) == [(0, 32, 0, 20)]
    assert axis_spans(64, 64, 8) == [(0, 64, 0, 64)]


@pytest.mark.parametrize(("window", "margin", "multiple"), [(64, 32, 1), (50, 4, 16), (64, -1, 1), (0, 0, 1)])
def test_bad_grid_settings(window: int, margin: int, multiple: int) -> None:
    with pytest.raises(ConfigError):
        tile_grid(100, 100, window, margin, multiple)


def test_inference_writes_each_pixel_from_the_window_that_owns_it_in_validation(tmp_path: Path) -> None:
    """predict_raster writes the validation grid's owned pixels (window = patch, margin = overlap / 2)."""
    height, width, patch, overlap = 100, 75, 32, 16
    src = write_tif(tmp_path / "in.tif", noise_bands(height, width, seed=3))
    calls = iter(range(10_000))

    def paint(x: torch.Tensor) -> torch.Tensor:  # each window writes its own index
        n, _, h, w = x.shape
        ids = torch.tensor([float(next(calls)) for _ in range(n)])
        return ids.view(n, 1, 1, 1).expand(n, 1, h, w).clone()

    dst = tmp_path / "owners.tif"
    predict_raster(
        paint,
        src,
        dst,
        window=patch,
        margin=overlap // 2,
        batch_size=3,
        output="prob_float32",
        progress=False,
    )
    with rasterio.open(dst) as ds:
        written = ds.read(1)
    owner = np.full((height, width), -1.0, np.float32)
    for i, ref in enumerate(GridWindowSampler([Region(0, 0, 0, height, width)], patch, overlap)):
        assert ref.owned is not None
        r0, r1, c0, c1 = ref.owned
        owner[ref.row_off + r0 : ref.row_off + r1, ref.col_off + c0 : ref.col_off + c1] = i
    assert (owner >= 0).all()
    np.testing.assert_array_equal(written, owner)


# -- predict_raster --------------------------------------------------------------------------


def test_seamless_equals_whole_raster(tmp_path: Path) -> None:
    data = noise_bands()
    src = write_tif(tmp_path / "in.tif", data)
    model = scaled(seg_model())
    expected = whole(model, data)
    dst = tmp_path / "prob.tif"
    stats = predict_raster(
        model, src, dst, window=64, margin=4, batch_size=3, output="prob_float32", progress=False
    )
    with rasterio.open(dst) as ds:
        got = ds.read(1)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    assert stats.windows == len(tile_grid(150, 203, 64, 4)) > 6
    assert stats.pixels == 150 * 203 and stats.model_seconds > 0

    # The same model without margin shows seams, so the comparison above has teeth.
    predict_raster(model, src, dst, window=64, margin=0, output="prob_float32", progress=False)
    with rasterio.open(dst) as ds:
        assert np.abs(ds.read(1) - expected).max() > 1e-3


def test_round_trip_cog_profile(tmp_path: Path) -> None:
    data = noise_bands(130, 170, seed=1)
    src = write_tif(tmp_path / "in.tif", data)
    model = scaled(seg_model(1))
    expected = whole(model, data)
    dst = tmp_path / "prob_u8.tif"
    predict_raster(model, src, dst, window=48, margin=4, size_multiple=16, blocksize=64, progress=False)
    assert cog_validate(dst, quiet=True)[0]
    with rasterio.open(dst) as ds:
        assert ds.crs.to_epsg() == 32633 and ds.transform == TRANSFORM
        assert (ds.height, ds.width, ds.count) == (130, 170, 1)
        assert ds.dtypes[0] == "uint8" and ds.nodata == 255
        assert ds.overviews(1)
        assert ds.scales[0] == pytest.approx(1 / UINT8_SCALE)
        assert ds.tags()["SATCNN_OUTPUT"] == "prob_uint8"
        got = ds.read(1)
    # float32 results of different batch shapes can round to neighbouring steps of 1/254
    diff = np.abs(got.astype(int) - np.rint(expected * UINT8_SCALE).astype(int))
    assert diff.max() <= 1

    mask_dst = tmp_path / "mask.tif"
    predict_raster(model, src, mask_dst, window=64, margin=4, output="mask", threshold=0.5, progress=False)
    with rasterio.open(mask_dst) as ds:
        mask = ds.read(1)
        assert ds.nodata == 255
    np.testing.assert_array_equal(mask, (expected >= 0.5).astype(np.uint8))
    assert sorted(os.listdir(tmp_path)) == ["in.tif", "mask.tif", "prob_u8.tif"]


def test_input_nodata_stays_nodata(tmp_path: Path) -> None:
    data = noise_bands(100, 90, seed=2)
    data[:, 10:30, 5:25] = 0  # every band nodata
    data[:, :, 80:] = 0  # a collar wider than one window's core
    data[:, :34, :] = 0  # whole windows of nodata: the model skips them
    data[0, 50:60, 50:60] = 0  # one band only: still valid
    src = write_tif(tmp_path / "in.tif", data, nodata=0)
    invalid = np.all(data == 0, axis=0)
    model = scaled(seg_model(2))
    checks: list[tuple[str, Callable[[np.ndarray], np.ndarray]]] = [
        ("prob_uint8", lambda a: a == 255),
        ("mask", lambda a: a == 255),
        ("prob_float32", np.isnan),
    ]
    for output, check in checks:
        dst = tmp_path / f"{output}.tif"
        predict_raster(model, src, dst, window=32, margin=4, output=output, progress=False)  # type: ignore[arg-type]
        with rasterio.open(dst) as ds:
            out = ds.read(1)
            if output == "prob_float32":
                assert math.isnan(ds.nodata)
        np.testing.assert_array_equal(check(out), invalid, err_msg=output)


def test_logits_and_two_channel_output(tmp_path: Path) -> None:
    data = noise_bands(40, 50, seed=3)
    src = write_tif(tmp_path / "in.tif", data)
    torch.manual_seed(3)
    conv = nn.Conv2d(4, 1, 3, padding=1)
    model = scaled(conv)
    expected = torch.sigmoid(torch.from_numpy(whole(model, data))).numpy()
    dst = tmp_path / "p.tif"
    predict_raster(model, src, dst, window=32, margin=2, logits=True, output="prob_float32", progress=False)
    with rasterio.open(dst) as ds:
        np.testing.assert_allclose(ds.read(1), expected, atol=1e-5)

    # (N, 2, H, W) logits are background/foreground: softmax channel 1 = sigmoid(z1 - z0)
    def two(x: torch.Tensor) -> torch.Tensor:
        z = model(x)
        return torch.cat([-z, z], 1)

    predict_raster(two, src, dst, window=32, margin=2, logits=True, output="prob_float32", progress=False)
    expected2 = torch.sigmoid(2 * torch.from_numpy(whole(model, data))).numpy()
    with rasterio.open(dst) as ds:
        np.testing.assert_allclose(ds.read(1), expected2, atol=1e-5)


def test_raster_smaller_than_window(tmp_path: Path) -> None:
    data = noise_bands(20, 37, seed=6)
    src = write_tif(tmp_path / "tiny.tif", data)
    torch.manual_seed(6)
    model = scaled(nn.Sequential(nn.Conv2d(4, 1, 1), nn.Sigmoid()))  # pointwise: padding cannot matter
    shapes: list[tuple[int, ...]] = []

    def spy(x: torch.Tensor) -> torch.Tensor:
        shapes.append(tuple(x.shape))
        return model(x)

    dst = tmp_path / "p.tif"
    predict_raster(
        spy, src, dst, window=64, margin=8, size_multiple=16, output="prob_float32", progress=False
    )
    assert shapes == [(1, 4, 32, 48)]  # one window, padded up to the size multiple
    with rasterio.open(dst) as ds:
        assert (ds.height, ds.width) == (20, 37)
        np.testing.assert_allclose(ds.read(1), whole(model, data), atol=1e-6)


def test_bad_model_output_leaves_no_file(tmp_path: Path) -> None:
    src = write_tif(tmp_path / "in.tif", noise_bands(40, 50))
    dst = tmp_path / "out.tif"
    with pytest.raises(ModelError, match="spatial shape"):
        predict_raster(nn.Conv2d(4, 1, 3), src, dst, window=32, margin=2, progress=False)
    assert sorted(os.listdir(tmp_path)) == ["in.tif"]


def test_band_mismatch_fails_before_model(tmp_path: Path) -> None:
    src = write_tif(tmp_path / "rgb.tif", noise_bands(40, 50)[:3])
    calls = []

    def model(x: torch.Tensor) -> torch.Tensor:
        calls.append(x.shape)
        return x[:, :1]

    with pytest.raises(RasterError, match=r"rgb\.tif: model expects 4 bands \(red, green, blue, nir\)"):
        predict_raster(model, src, tmp_path / "o.tif", bands=["red", "green", "blue", "nir"], progress=False)
    assert calls == []


# -- classify_raster -------------------------------------------------------------------------


def test_classify_equals_per_window(tmp_path: Path) -> None:
    P, S, K = 8, 4, 3
    data = noise_bands(70, 53, seed=5)
    data[:, 40:42, 20:22] = 0  # nodata pixels
    src = write_tif(tmp_path / "in.tif", data, nodata=0)
    model = patch_classifier(P, S, K)
    classes = ["water", "field", "forest"]
    dst = tmp_path / "classes.tif"
    stats = classify_raster(
        model, src, dst, patch_size=P, stride=S, classes=classes, block=24, progress=False
    )

    out_h, out_w = (70 - P) // S + 1, (53 - P) // S + 1
    x = torch.from_numpy(data.astype(np.float32))
    wins = torch.stack(
        [x[:, i * S : i * S + P, j * S : j * S + P] for i in range(out_h) for j in range(out_w)]
    )
    with torch.inference_mode():
        expected = model(wins)[:, :, 0, 0].argmax(1).numpy().reshape(out_h, out_w).astype(np.uint8)
    invalid = np.all(data == 0, axis=0)
    for i in range(out_h):
        for j in range(out_w):
            if invalid[i * S : i * S + P, j * S : j * S + P].any():
                expected[i, j] = 255
    assert (expected == 255).sum() > 0 and stats.windows > 4

    with rasterio.open(dst) as ds:
        got = ds.read(1)
        assert ds.nodata == 255 and ds.dtypes[0] == "uint8" and ds.crs.to_epsg() == 32633
        assert json.loads(ds.tags()["CLASS_NAMES"]) == classes
        assert ds.tags()["CLASS_2"] == "forest"
        assert ds.colormap(1)[1][:3] != ds.colormap(1)[0][:3]
        # pixel (i, j) is centred on the centre of input window (i*S, j*S, P, P)
        assert ds.transform == class_map_transform(TRANSFORM, P, S, "center")
        i, j = 3, 5
        assert ds.xy(i, j) == pytest.approx(
            rasterio.transform.xy(TRANSFORM, i * S + P / 2, j * S + P / 2, offset="ul")
        )
    np.testing.assert_array_equal(got, expected)
    counts = np.bincount(expected[expected != 255], minlength=K)
    assert stats.class_counts == dict(zip(classes, counts.tolist(), strict=True))
    assert cog_validate(dst, quiet=True)[0]


def test_classify_raster_too_small(tmp_path: Path) -> None:
    src = write_tif(tmp_path / "tiny.tif", noise_bands(20, 40))
    with pytest.raises(RasterError, match=r"tiny\.tif: raster is 20 x 40"):
        classify_raster(
            patch_classifier(28, 28, 2), src, tmp_path / "o.tif", patch_size=28, classes=["a", "b"]
        )
