"""Remote hrefs (satcnn.io.remote) read from a real loopback HTTP server that honours Range requests."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import rasterio

from satcnn.errors import ConfigError, InputFileNotFoundError, RasterError
from satcnn.io.inputs import resolve_inputs
from satcnn.io.raster import open_dataset, open_raster
from satcnn.io.remote import GDAL_DEFAULTS, Href, gdal_options, signed
from tests.factories import NAIP, crop, range_server, write_cog


@pytest.fixture(autouse=True)
def _loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("GDAL_HTTP_RETRY_DELAY", "0.05")  # the user's setting wins over satcnn's


def test_hrefs_are_inputs_named_after_their_url_path(tmp_path: Path) -> None:
    local = crop(NAIP, tmp_path / "local.tif", 30)
    listed = tmp_path / "tiles.txt"
    listed.write_text("https://example.com/naip/b%20c.tif?sig=1\nlocal.tif\ns3://bucket/key/d.TIF\n")
    got = resolve_inputs(
        ["https://example.com/x/a.tif?se=2&sig=abc", listed, "https://example.com/x/a.tif?se=2&sig=abc"]
    )
    assert [str(p) for p in got] == [
        "https://example.com/x/a.tif?se=2&sig=abc",
        "https://example.com/naip/b%20c.tif?sig=1",
        str(local),
        "s3://bucket/key/d.TIF",
    ]
    assert [p.stem for p in got] == ["a", "b c", "local", "d"]
    assert isinstance(got[0], Href) and os.fspath(got[0]) == str(got[0])
    with pytest.raises(InputFileNotFoundError, match=r"^s3://bucket/naip/: is a folder URL.*list file"):
        resolve_inputs(["s3://bucket/naip/"])
    assert gdal_options()["GDAL_DISABLE_READDIR_ON_OPEN"] == "EMPTY_DIR"
    assert "GDAL_HTTP_RETRY_DELAY" not in gdal_options() and "GDAL_HTTP_RETRY_DELAY" in GDAL_DEFAULTS


def test_signer_hook_signs_each_href(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mysigner.py").write_text("def sign(href):\n    return href + '?token=t'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("SATCNN_HREF_SIGNER", "mysigner:sign")
    assert signed("https://h/a.tif") == "https://h/a.tif?token=t"
    monkeypatch.setenv("SATCNN_HREF_SIGNER", "mysigner:nope")
    with pytest.raises(ConfigError, match="SATCNN_HREF_SIGNER=mysigner:nope"):
        signed("https://h/a.tif")


def test_remote_cog_reads_as_local_with_retries_and_a_dead_url_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tile = crop(NAIP, tmp_path / "tile.tif", 200, 260)
    for name in ("a.tif", "b.tif", "c.tif"):
        write_cog(tile, tmp_path / name)
    with rasterio.open(tmp_path / "a.tif") as ds:
        expected = ds.read()
    with range_server(tmp_path) as srv:
        srv.fail_first["a.tif"] = 2  # two 503s, then the file: GDAL's retries
        info = open_raster(f"{srv.url}/a.tif", bands=4)
        with open_dataset(f"{srv.url}/a.tif") as ds:
            np.testing.assert_array_equal(ds.read(), expected)
        assert info.shape == (200, 260) and srv.requests["a.tif"] >= 3

        srv.reset_first["c.tif"] = 1  # a dropped connection, retried
        with open_dataset(f"{srv.url}/c.tif") as ds:
            np.testing.assert_array_equal(ds.read(), expected)
        assert srv.requests["c.tif"] >= 2

        monkeypatch.setenv("GDAL_HTTP_MAX_RETRY", "0")  # the user's GDAL environment wins: no retries
        srv.fail_first["b.tif"] = 1
        with pytest.raises(RasterError, match=rf"^{srv.url}/b\.tif: cannot be read over the network.*503"):
            open_raster(f"{srv.url}/b.tif")
        with pytest.raises(RasterError, match=rf"^{srv.url}/gone\.tif: .*404"):
            open_raster(f"{srv.url}/gone.tif")


def test_s3_href_reads_through_gdal_vsis3_with_the_users_endpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "bucket" / "naip").mkdir(parents=True)
    cog = write_cog(crop(NAIP, tmp_path / "tile.tif", 150), tmp_path / "bucket" / "naip" / "t.tif")
    with range_server(tmp_path) as srv:  # path-style S3 GETs are plain range requests on /bucket/key
        for k, v in {
            "AWS_S3_ENDPOINT": srv.url.removeprefix("http://"),
            "AWS_HTTPS": "NO",
            "AWS_VIRTUAL_HOSTING": "FALSE",
            "AWS_NO_SIGN_REQUEST": "YES",
        }.items():
            monkeypatch.setenv(k, v)
        [href] = resolve_inputs(["s3://bucket/naip/t.tif"])
        with open_dataset(href) as ds, rasterio.open(cog) as local:
            np.testing.assert_array_equal(ds.read(), local.read())
        assert href.stem == "t" and srv.requests["bucket/naip/t.tif"] >= 1
