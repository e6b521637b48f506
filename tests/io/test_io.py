"""Tests for satcnn.io: raster validation and atomic COG writing."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.enums import ColorInterp
from rasterio.transform import from_origin
from rasterio.windows import Window
from rio_cogeo.cogeo import cog_validate

from satcnn.errors import InputFileNotFoundError, RasterError
from satcnn.io.cog import AtomicCOGWriter, temp_paths
from satcnn.io.raster import open_raster
from tests.factories import write_tif

CRS = "EPSG:32633"
TRANSFORM = from_origin(500_000.0, 4_600_000.0, 10.0, 10.0)


# -- open_raster -----------------------------------------------------------------------------


def test_open_raster_reads_header(tmp_path: Path) -> None:
    p = write_tif(tmp_path / "a.tif", nodata=0)
    info = open_raster(p, bands=["red", "green", "blue", "nir"], dtypes=["uint8"], min_size=40)
    assert (info.height, info.width, info.count, info.dtype) == (40, 50, 4, "uint8")
    assert info.crs is not None and info.crs.to_epsg() == 32633
    assert info.transform == TRANSFORM
    assert info.nodata == 0
    assert info.profile["width"] == 50


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputFileNotFoundError, match=r"nope\.tif"):
        open_raster(tmp_path / "nope.tif")


@pytest.mark.parametrize("content", [b"", b"not a raster at all\n" * 10, b"II*\x00garbage"])
def test_corrupt_or_non_raster(tmp_path: Path, content: bytes) -> None:
    p = tmp_path / "bad.tif"
    p.write_bytes(content)
    with pytest.raises(RasterError, match=r"bad\.tif.*not a readable raster"):
        open_raster(p)


def test_no_crs(tmp_path: Path) -> None:
    p = write_tif(tmp_path / "nocrs.tif", crs=None)
    with pytest.raises(RasterError, match=r"nocrs\.tif.*no coordinate reference system"):
        open_raster(p)
    assert open_raster(p, require_crs=False).crs is None


def test_band_count_names_bands(tmp_path: Path) -> None:
    p = write_tif(tmp_path / "rgb.tif", count=3)
    with pytest.raises(
        RasterError, match=r"rgb\.tif: model expects 4 bands \(red, green, blue, nir\); file has 3"
    ):
        open_raster(p, bands=["red", "green", "blue", "nir"])
    with pytest.raises(RasterError, match="expects 4 bands; file has 3"):
        open_raster(p, bands=4)


def test_dtype_not_allowed(tmp_path: Path) -> None:
    p = write_tif(tmp_path / "f.tif", dtype="float32")
    with pytest.raises(
        RasterError, match=r"f\.tif: data type float32 is not supported; expected one of uint8"
    ):
        open_raster(p, dtypes=["uint8", "uint16"])


def test_smaller_than_window(tmp_path: Path) -> None:
    p = write_tif(tmp_path / "small.tif", height=20, width=60)
    with pytest.raises(RasterError, match=r"small\.tif: raster is 20 x 60 .*smaller than one 28 x 28 window"):
        open_raster(p, min_size=28)
    open_raster(p, min_size=20)


# -- AtomicCOGWriter -------------------------------------------------------------------------


def _profile(
    dtype: str = "float32", nodata: float | None = -1.0, height: int = 300, width: int = 350
) -> dict:
    return {
        "crs": CRS,
        "transform": TRANSFORM,
        "width": width,
        "height": height,
        "count": 1,
        "dtype": dtype,
        "nodata": nodata,
    }


def test_cog_writer_round_trip(tmp_path: Path) -> None:
    dst = tmp_path / "out.tif"
    rng = np.random.default_rng(1)
    full = rng.random((300, 350), dtype=np.float32)
    with AtomicCOGWriter(dst, _profile(), blocksize=64, overview_resampling="average", tags={"k": 7}) as w:
        for r in range(0, 300, 70):  # windows not aligned to the blocks
            for c in range(0, 350, 90):
                win = Window(c, r, min(90, 350 - c), min(70, 300 - r))
                w.write(full[r : r + int(win.height), c : c + int(win.width)], win)
        assert w.tmp_path.exists() and not dst.exists()
    ok, errors, _ = cog_validate(dst, quiet=True)
    assert ok, errors
    with rasterio.open(dst) as ds:
        assert ds.crs.to_epsg() == 32633
        assert ds.transform == TRANSFORM
        assert (ds.height, ds.width, ds.count) == (300, 350, 1)
        assert ds.dtypes[0] == "float32" and ds.nodata == -1.0
        assert ds.overviews(1), "expected internal overviews"
        assert ds.block_shapes[0] == (64, 64)
        assert ds.tags()["k"] == "7"
        np.testing.assert_array_equal(ds.read(1), full)
    assert sorted(os.listdir(tmp_path)) == ["out.tif"]


def test_cog_writer_colormap_and_tags(tmp_path: Path) -> None:
    dst = tmp_path / "classes.tif"
    cmap = {0: (255, 0, 0, 255), 1: (0, 255, 0, 255), 255: (0, 0, 0, 0)}
    with AtomicCOGWriter(
        dst, _profile("uint8", 255), blocksize=64, colormap=cmap, tags={"CLASS_0": "a"}
    ) as w:
        w.write(np.ones((300, 350), np.uint8), Window(0, 0, 350, 300))
    with rasterio.open(dst) as ds:
        assert ds.colorinterp[0] == ColorInterp.palette
        assert ds.colormap(1)[1] == (0, 255, 0, 255)
        assert ds.tags()["CLASS_0"] == "a"
    assert cog_validate(dst, quiet=True)[0]


def test_cog_writer_exception_leaves_nothing(tmp_path: Path) -> None:
    dst = tmp_path / "out.tif"
    with pytest.raises(RuntimeError, match="boom"), AtomicCOGWriter(dst, _profile(), blocksize=64) as w:
        w.write(np.zeros((10, 10), np.float32), Window(0, 0, 10, 10))
        assert temp_paths(dst)[0].exists()
        raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []


def test_cog_writer_failure_keeps_old_output(tmp_path: Path) -> None:
    dst = tmp_path / "out.tif"
    dst.write_bytes(b"previous result")
    with pytest.raises(RuntimeError), AtomicCOGWriter(dst, _profile(), blocksize=64) as w:
        w.write(np.zeros((10, 10), np.float32), Window(0, 0, 10, 10))
        raise RuntimeError("boom")
    assert dst.read_bytes() == b"previous result"
    assert os.listdir(tmp_path) == ["out.tif"]


def test_cog_writer_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(RasterError, match="does not exist"):
        AtomicCOGWriter(tmp_path / "no" / "out.tif", _profile()).open()


def test_failed_metadata_in_open_leaves_no_temporary(tmp_path: Path) -> None:
    dst = tmp_path / "out.tif"
    bad_colormap = {0: (0, 0, 0, 255, 9, 9)}  # not an RGBA entry: GDAL refuses it after creation
    with pytest.raises(Exception), AtomicCOGWriter(dst, _profile(), colormap=bad_colormap):  # noqa: B017
        pass
    assert not temp_paths(dst)[0].exists()
    assert sorted(os.listdir(tmp_path)) == []
