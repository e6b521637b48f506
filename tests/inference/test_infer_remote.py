"""``satcnn infer`` on hrefs served by a real loopback HTTP server (Range requests, faults)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from satcnn.errors import SatcnnError
from satcnn.inference.segment import predict_raster
from tests.factories import NAIP, crop, range_server, satcnn, write_checkpoint, write_cog


@pytest.fixture(autouse=True)
def _loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("GDAL_HTTP_RETRY_DELAY", "0.05")


@pytest.mark.slow
def test_infer_reads_hrefs_in_place_retries_names_dead_ones_and_resumes(tmp_path: Path) -> None:
    ckpt = write_checkpoint(tmp_path / "sat6.ckpt")
    served = tmp_path / "served"
    served.mkdir()
    cog = write_cog(crop(NAIP, tmp_path / "tile.tif", 84, 112), served / "a.tif")
    common = ["--model", str(ckpt), "--stride", "14", "--no-track", "--no-progress"]
    local = satcnn("infer", *common, "--input", str(cog), "--output", str(tmp_path / "local"))
    assert local.returncode == 0, local.stderr

    with range_server(served) as srv:
        srv.fail_first["a.tif"] = 2  # a transient 503, retried
        listed = tmp_path / "tiles.txt"
        listed.write_text(f"{srv.url}/a.tif\n{srv.url}/gone.tif\n")
        out = tmp_path / "remote"
        args = [*common, "--input", str(listed), "--output", str(out)]

        stopped = satcnn("infer", *args)
        assert stopped.returncode == 1
        assert f"{srv.url}/gone.tif" in stopped.stderr and "404" in stopped.stderr
        assert "Traceback" not in stopped.stderr

        proc = satcnn("infer", *args, "--keep-going")
        assert proc.returncode == 1 and f"{srv.url}/gone.tif" in proc.stderr
        with rasterio.open(out / "a.tif") as got, rasterio.open(tmp_path / "local" / "a.tif") as want:
            np.testing.assert_array_equal(got.read(), want.read())
            assert got.tags()["SATCNN_SOURCE"] == "a.tif"
        assert sorted(p.name for p in out.glob("*.tif")) == ["a.tif"]  # nothing half-written

        srv.reset()
        before = (out / "a.tif").stat().st_mtime_ns
        rerun = satcnn("infer", *args, "--keep-going")
        assert rerun.returncode == 1
        assert (out / "a.tif").stat().st_mtime_ns == before  # the current output is kept
        assert srv.requests["a.tif"] == srv.heads["a.tif"] == 1  # one HEAD for its ETag, no GET
        with rasterio.open(out / "a.tif") as got:
            assert got.tags()["SATCNN_SOURCE_HREF"] == f"{srv.url}/a.tif"

        (served / "a.tif").touch()  # a new ETag (the server's is mtime and size): inferred again
        srv.reset()
        changed = satcnn("infer", *args, "--keep-going")
        assert changed.returncode == 1 and (out / "a.tif").stat().st_mtime_ns != before
        assert srv.requests["a.tif"] > srv.heads["a.tif"]


def test_a_read_failing_mid_raster_names_the_href_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served, out = tmp_path / "served", tmp_path / "out"
    served.mkdir()
    out.mkdir()
    write_cog(crop(NAIP, tmp_path / "tile.tif", 300, 300), served / "a.tif")
    monkeypatch.setenv("GDAL_HTTP_MAX_RETRY", "1")
    model = torch.nn.Sequential(torch.nn.Conv2d(4, 1, 1), torch.nn.Sigmoid()).eval()
    with range_server(served) as srv:
        srv.fail_after["a.tif"] = (
            2  # the version (HEAD) and the header are read, then every window's tiles fail
        )
        with pytest.raises(SatcnnError, match=rf"^{srv.url}/a\.tif: cannot read its pixels over the network"):
            predict_raster(model, f"{srv.url}/a.tif", out / "a.tif", window=128, margin=0, progress=False)
    assert list(out.iterdir()) == []  # nothing half-written
