"""``satcnn infer`` on ``s3://`` hrefs: moto's S3 server on loopback, behind a fault-injecting proxy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from tests.factories import (
    NAIP,
    crop,
    fault_proxy,
    gdal_s3_env,
    put_files,
    s3_server,
    satcnn,
    write_checkpoint,
)

pytestmark = pytest.mark.slow  # four runs of the CLI


def _pixels(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read()


def test_s3_hrefs_through_503s_resets_and_stalls_match_local_and_a_rerun_fetches_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ckpt = write_checkpoint(tmp_path / "sat6.ckpt")
    tile = crop(NAIP, tmp_path / "a.tif", 84, 112)
    changed = crop(NAIP, tmp_path / "changed.tif", 98, 112)
    out = tmp_path / "out"
    listed = tmp_path / "tiles.txt"
    listed.write_text(f"{tile}\ns3://imagery/naip/b.tif\ns3://imagery/naip/gone.tif\n")
    args = ["--model", str(ckpt), "--stride", "14", "--no-track", "--no-progress", "--keep-going"]
    args += ["--input", str(listed), "--output", str(out)]
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("GDAL_HTTP_RETRY_DELAY", "0.05")
    monkeypatch.setenv("GDAL_HTTP_TIMEOUT", "1")
    with s3_server() as s3, fault_proxy(s3) as proxy:
        put_files(s3, "imagery", {"naip/b.tif": tile})
        for k, v in gdal_s3_env(proxy.url).items():
            monkeypatch.setenv(k, v)
        key = "/imagery/naip/b.tif"
        proxy.reset_first[key] = proxy.fail_first[key] = proxy.stall_first[key] = 1
        proxy.stall = 1.5  # past GDAL_HTTP_TIMEOUT: a timeout, retried

        first = satcnn("infer", *args)
        assert first.returncode == 1, first.stderr  # the dead href fails the run
        assert first.stderr.count("s3://imagery/naip/gone.tif") == 1, first.stderr  # reported once
        assert "Traceback" not in first.stderr
        statuses = [status for *_, status in proxy.requests(key)]
        assert {0, 503, -1} <= set(statuses) and {200, 206} & set(statuses)  # reset, 503, stall: retried
        np.testing.assert_array_equal(_pixels(out / "b.tif"), _pixels(out / "a.tif"))  # as the local file
        with rasterio.open(out / "b.tif") as ds:
            assert ds.tags()["SATCNN_SOURCE_HREF"] == "s3://imagery/naip/b.tif"
            assert ds.tags()["SATCNN_SOURCE_VERSION"].startswith("etag:")
        assert sorted(p.name for p in out.glob("*.tif")) == ["a.tif", "b.tif"]  # nothing half-written

        stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.tif")}
        proxy.log.clear()
        rerun = satcnn("infer", *args)
        assert rerun.returncode == 1 and rerun.stderr.count("s3://imagery/naip/gone.tif") == 1
        # the ETag only: GDAL asks S3 with a GET of the first 16 KB (a HEAD for http), no pixel beyond
        asked = [r for _, _, r, _ in proxy.requests(key)]
        assert asked and all(r and r.startswith("bytes=0-") and int(r[8:]) < 16384 for r in asked), asked
        assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.tif")} == stamps

        put_files(s3, "imagery", {"naip/b.tif": changed})  # a new ETag: b is inferred again
        again = satcnn("infer", *args)
        assert again.returncode == 1, again.stderr
        assert (out / "a.tif").stat().st_mtime_ns == stamps["a.tif"]
        assert (out / "b.tif").stat().st_mtime_ns != stamps["b.tif"]
        assert _pixels(out / "b.tif").shape != _pixels(out / "a.tif").shape  # the new file's map
