"""Road graphs on a pixel grid (``--allow-no-crs``): Massachusetts Roads tiles carry no location."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest

from tests.factories import satcnn, write_tif


def _cross(gap: bool = False) -> np.ndarray:
    """A 300 x 300 px road cross, 5 px wide; ``gap`` cuts 60 px out of one arm."""
    mask = np.zeros((300, 300), dtype="uint8")
    mask[148:153, 20:280] = 1
    mask[20:280, 148:153] = 1
    if gap:
        mask[148:153, 190:250] = 0
    return mask


@pytest.mark.slow
def test_vectorize_and_apls_on_a_pixel_grid(tmp_path: Path) -> None:
    """The transform's units are taken as metres; lengths and APLS follow; CRS and no CRS never mix."""
    truth = write_tif(tmp_path / "truth.tif", _cross(), crs=None, res=2.0)
    pred = write_tif(tmp_path / "pred.tif", _cross(gap=True), crs=None, res=2.0)

    refused = satcnn("vectorize", "roads", str(truth), "--out", str(tmp_path / "t.gpkg"), "--no-progress")
    assert refused.returncode == 1 and "CRS" in refused.stderr and "Traceback" not in refused.stderr
    assert not (tmp_path / "t.gpkg").exists()

    out = tmp_path / "truth.gpkg"
    done = satcnn("vectorize", "roads", str(truth), "--out", str(out), "--no-progress", "--allow-no-crs")
    assert done.returncode == 0, done.stderr
    # one warning of satcnn's, not pyogrio's per layer ("'crs' was not provided", twice)
    assert "was not provided" not in done.stderr and done.stderr.count("has no CRS") == 1, done.stderr
    lines = gpd.read_file(out, layer="lines")
    assert lines.crs is None
    # two 260 px arms at 2 m a pixel: about 1,040 m, in the transform's units
    assert 950 < lines["length_m"].sum() < 1100

    same = satcnn("evaluate", "graph", "--pred", str(out), "--truth", str(truth), "--allow-no-crs")
    assert same.returncode == 0, same.stderr
    assert json.loads(same.stdout)["apls"] > 0.99
    cut = satcnn("evaluate", "graph", "--pred", str(pred), "--truth", str(truth), "--allow-no-crs")
    assert cut.returncode == 0, cut.stderr
    report = json.loads(cut.stdout)
    assert 0.2 < report["apls"] < 0.95 and report["crs"].startswith("none")

    located = write_tif(tmp_path / "located.tif", _cross(), res=2.0)  # the factories' UTM CRS
    mixed = satcnn("evaluate", "graph", "--pred", str(located), "--truth", str(truth), "--allow-no-crs")
    assert mixed.returncode == 1 and "Traceback" not in mixed.stderr
    assert "no CRS" in mixed.stderr and str(truth) in mixed.stderr
