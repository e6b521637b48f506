"""``satcnn data fetch``: Massachusetts Roads from a loopback mirror of its layout, resumed after a cut."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image

from satcnn.data.fetch import MASS_ROADS_URL
from tests.factories import MASS_EXTRA, range_server, satcnn

PAIRS = {"train": ("train", "10978945_15", ".png"), "valid": ("valid", "2", ".jpg")}
INDEX = "<html><body>{}</body></html>"


def mirror(root: Path) -> Path:
    """The release's layout (``<split>/{sat,map}/index.html``, ``.tiff`` images, ``.tif`` labels)."""
    assert MASS_EXTRA.is_dir(), f"{MASS_EXTRA} is missing: the tests need ../shared beside the clone"
    for split, (source, stem, suffix) in PAIRS.items():
        for kind, ext in (("sat", ".tiff"), ("map", ".tif")):
            folder = root / split / kind
            folder.mkdir(parents=True)
            Image.open(MASS_EXTRA / source / kind / f"{stem}{suffix}").save(folder / f"{stem}{ext}")
            # the real index links absolute URLs on the dataset's host: a mirror must serve them by name
            link = f'<a href="{MASS_ROADS_URL}{split}/{kind}/{stem}{ext}">{stem}{ext}</a>'
            (folder / "index.html").write_text(INDEX.format(link))
    return root


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def test_fetch_resumes_a_cut_download_and_imports_the_pairs(tmp_path: Path) -> None:
    site = mirror(tmp_path / "site")
    out = tmp_path / "mass"
    big = "train/sat/10978945_15.tiff"
    with range_server(site) as server:
        server.cut_once[big] = 1_000_000
        base = f"{server.url}/"
        args = (
            "data",
            "fetch",
            "massachusetts-roads",
            "--out",
            str(out),
            "--splits",
            "train,valid",
            "--base-url",
            base,
        )
        first = satcnn(*args)
        lines = first.stderr.strip().splitlines()
        assert first.returncode == 1 and len(lines) == 1, first.stderr
        assert (
            "10978945_15.tiff" in lines[0]
            and "cut after 1000000" in lines[0]
            and "again to resume" in lines[0]
        )
        part = out / "raw" / "train" / "sat" / "10978945_15.tiff.part"
        assert part.stat().st_size == 1_000_000 and not (out / "train").exists()
        second = satcnn(*args)
        assert second.returncode == 0, second.stderr
    assert (big, "bytes=1000000-") in server.log, "the second run asked only for the rest"
    assert [path for path, _ in server.log].count(big) == 2
    for split, (_, stem, _) in PAIRS.items():
        for kind, ext in (("sat", ".tiff"), ("map", ".tif")):
            got = out / "raw" / split / kind / f"{stem}{ext}"
            assert got.read_bytes() == (site / split / kind / f"{stem}{ext}").read_bytes()
        with rasterio.open(out / split / "images" / f"{stem}.tif") as img:
            assert img.nodata == (255 if split == "train" else None) and img.res == (1.0, 1.0)
        with rasterio.open(out / split / "masks" / f"{stem}.tif") as msk:
            assert set(np.unique(msk.read(1))) == {0, 1}
    assert "wrote 1 scenes to" in second.stdout and not list(out.rglob("*.part"))


def test_a_missing_file_is_named_in_one_line(tmp_path: Path) -> None:
    site = mirror(tmp_path / "site")
    out = tmp_path / "mass"
    with range_server(site) as server:
        base = f"{server.url}/"
        result = satcnn(
            "data", "fetch", "massachusetts-roads", "--out", str(out), "--splits", "test", "--base-url", base
        )
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert f"{base}test/sat/index.html" in lines[0] and "HTTP 404" in lines[0]


def test_deepsat_says_where_to_get_it() -> None:
    result = satcnn("data", "fetch", "sat-6", "--out", "unused")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1 and "kaggle.com" in lines[0] and "SAT-6" in lines[0]
