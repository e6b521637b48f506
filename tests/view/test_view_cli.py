"""``satcnn view`` refuses what it cannot map with one line and exit status 1, before serving anything."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pytest
import rasterio

from satcnn.io.output_tags import OutputTags
from tests.factories import free_port, satcnn, write_tif


def _one_error_line(result: object, *needles: str) -> None:
    assert result.returncode == 1, result.stderr  # type: ignore[attr-defined]
    lines = [line for line in result.stderr.splitlines() if line.strip()]  # type: ignore[attr-defined]
    assert len(lines) == 1 and lines[0].startswith("satcnn: error: "), result.stderr  # type: ignore[attr-defined]
    assert all(n in lines[0] for n in needles), lines[0]


def _mixed_crs(out: Path) -> Path:
    """An infer output folder with a mask without a CRS (``--allow-no-crs``) and one with a CRS."""
    entries = []
    for name, crs in [("patch", None), ("scene", "EPSG:32614")]:
        mask = write_tif(out / f"{name}_mask.tif", np.ones((1, 28, 28), "uint8"), crs=crs)
        with rasterio.open(mask, "r+") as ds:
            OutputTags("mask", threshold=0.5).write(ds)
        entries.append({"input": f"{name}.tif", "outputs": [str(mask)]})
    (out / "manifest.json").write_text(json.dumps({"outputs": entries}))
    return out


@pytest.mark.parametrize("case", ["missing", "empty", "unrelated", "not-a-manifest", "mixed-crs"])
def test_bad_path_is_one_line(tmp_path: Path, case: str) -> None:
    path = tmp_path / "out"
    if case != "missing":
        path.mkdir()
    if case == "unrelated":
        (path / "notes.txt").write_text("hello")
        write_tif(path / "scene.tif")  # a raster, but no satcnn output and no manifest
    if case == "not-a-manifest":
        (path / "manifest.json").write_text("[1, 2]")
    if case == "mixed-crs":
        _mixed_crs(path)
    expected = {
        "missing": "not a folder",
        "empty": "no satcnn outputs here",
        "unrelated": "no satcnn outputs here",
        "not-a-manifest": "is not a satcnn manifest",
        "mixed-crs": "has no CRS but",
    }[case]
    _one_error_line(satcnn("view", str(path), "--port", str(free_port())), str(path), expected)


def test_busy_port_is_one_line(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    mask = write_tif(out / "tile_mask.tif", np.ones((1, 8, 8), "uint8"))
    with rasterio.open(mask, "r+") as ds:
        OutputTags("mask", threshold=0.5).write(ds)
    (out / "manifest.json").write_text(json.dumps({"outputs": [{"input": "t.tif", "outputs": [str(mask)]}]}))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        _one_error_line(satcnn("view", str(out), "--port", str(port)), f"port {port}", "in use")
