"""``satcnn view`` in headless Chromium, over real ``satcnn infer`` outputs (a road run and a class-map run).

One server and one browser session serve every assertion (module fixture). A JavaScript error in
the browser console fails the test. Without Chromium the test skips on a workstation and fails
where ``CI`` is set (as ``tests/tracking/test_ui_browser.py``).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import morecantile
import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.warp import transform as warp_points

from satcnn.cli import main
from tests.factories import (
    CLASSES,
    NAIP,
    ROOT,
    as_terminal_job,
    crop,
    free_port,
    http_open,
    wait_http,
    write_checkpoint,
    write_tif,
)
from tests.factories.browser import chromium, require_browser

SCREENSHOT = ROOT / "test-artifacts" / "satcnn-view.png"
ZOOM = 19  # 0.2 m tile pixels at 47 N: finer than NAIP's 0.6 m

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@dataclass
class Viewer:
    base: str
    server: subprocess.Popen[bytes]
    driver: Any
    run: Path

    def get(self, path: str) -> bytes:
        with http_open(self.base + path, timeout=60) as response:
            assert response.status == 200, path
            return bytes(response.read())

    def index(self, name: str) -> int:
        """The tile's index in the catalog the page shows."""
        tiles = json.loads(self.get("/api/catalog"))["tiles"]
        return next(t["index"] for t in tiles if t["name"] == name)

    def js_errors(self) -> list[str]:
        return [e["message"] for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]


def _infer_runs(tmp: Path) -> Path:
    """A road run (probability, mask, road graph) and a class-map run over one NAIP crop."""
    tile = crop(NAIP, tmp / "naip.tif", 128)
    road = write_checkpoint(
        tmp / "road.ckpt",
        name="unet",
        kwargs={"in_channels": 4, "num_classes": 1, "base_filters": 4, "depth": 2},
        task="segmentation",
        patch_size=64,
    )
    common = ["--input", str(tile), "--no-track", "--no-progress"]
    run = tmp / "run"
    roads = ["infer", "--model", str(road), "--output", str(run / "roads"), "--output-type", "both"]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main([*roads, "--vector", *common]) == 0
    assert f"satcnn view {run / 'roads'}\n" in printed.getvalue()  # infer says how to look at its outputs
    classes = ["infer", "--model", str(write_checkpoint(tmp / "sat6.ckpt")), "--output", str(run / "classes")]
    assert main([*classes, *common]) == 0
    truth = np.zeros((1, 128, 128), "uint8")
    truth[:, :64] = 1  # road in the top half: the (all-road) mask is right there, wrong below
    with rasterio.open(tile) as ds:
        write_tif(tmp / "truth.tif", truth, transform=ds.transform, crs=ds.crs)
    pred, out = str(run / "roads" / "naip_mask.tif"), str(run / "evaluate")
    evaluate = ["evaluate", "roads", "--pred", pred, "--truth", str(tmp / "truth.tif"), "--out-dir", out]
    assert main([*evaluate, "--no-track", "--figures", "0"]) == 0
    return run


@pytest.fixture(scope="module")
def viewer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Viewer]:
    require_browser()
    tmp = tmp_path_factory.mktemp("view")
    run = _infer_runs(tmp)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "satcnn", "view", str(run), "--port", str(port)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        preexec_fn=as_terminal_job,  # Ctrl-C stops it, as in a terminal
    )
    driver = None
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/api/catalog", server)
        driver = chromium(tmp / "chromium-profile", window="1200,800")
        driver.get(base + "/")
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(driver, 60).until(lambda d: d.execute_script("return document.body.dataset.ready"))
        yield Viewer(base, server, driver, run)
    finally:
        if driver is not None:
            driver.quit()
        if server.poll() is None:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()


def _tile_pixel(path: Path, row: float, col: float) -> tuple[str, tuple[int, int]]:
    """The z/x/y tile holding raster pixel (row, col) of ``path`` (its centre), and where in it."""
    with rasterio.open(path) as ds:
        x, y = ds.transform * (col + 0.5, row + 0.5)
        (lon,), (lat,) = warp_points(ds.crs, "EPSG:4326", [x], [y])
    tms = morecantile.tms.get("WebMercatorQuad")
    tile = tms.tile(lon, lat, ZOOM)
    b = tms.xy_bounds(tile)
    mx, my = tms.xy(lon, lat)
    px = int((mx - b.left) / (b.right - b.left) * 256)
    py = int((b.top - my) / (b.top - b.bottom) * 256)
    return f"{tile.z}/{tile.x}/{tile.y}", (px, py)


def _png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG" and image.size == (256, 256)
    return image.convert("RGBA")


def test_page_shows_layers_legend_and_no_js_error(viewer: Viewer) -> None:
    body = viewer.driver.find_element("tag name", "body").text
    for title in ("Imagery (true colour)", "Imagery (colour infrared)", "Road probability", "Road mask"):
        assert title in body
    assert "Class map" in body and "Vectors (road graph, polygons)" in body
    legend = viewer.driver.find_element("id", "legend").text
    assert all(name in legend for name in CLASSES)  # the class names from the class map's tags
    assert "roads/naip (iou 0." in body and "classes/naip" in body  # the tile list, scores from evaluate
    assert "Mask against truth" in body and "false positive" in legend
    from selenium.webdriver.support.ui import WebDriverWait

    loaded = "return document.querySelectorAll('img.leaflet-tile-loaded').length"
    pending = "return document.querySelectorAll('img.leaflet-tile:not(.leaflet-tile-loaded)').length"
    WebDriverWait(viewer.driver, 60).until(
        lambda d: d.execute_script(loaded) > 0 and not d.execute_script(pending)
    )
    SCREENSHOT.parent.mkdir(exist_ok=True)
    assert viewer.driver.save_screenshot(str(SCREENSHOT))
    assert viewer.js_errors() == []


def test_tiles_are_pngs_at_the_right_place(viewer: Viewer) -> None:
    mask = viewer.run / "roads" / "naip_mask.tif"
    with rasterio.open(mask) as ds:
        assert ds.read(1)[3, 3] == 1  # a known road pixel, near the top-left corner
    inside, (px, py) = _tile_pixel(mask, 3, 3)
    outside, (qx, qy) = _tile_pixel(mask, -4, -4)  # beyond that corner
    roads, classes = viewer.index("roads/naip"), viewer.index("classes/naip")
    red = _png(viewer.get(f"/tiles/{roads}/mask/{inside}.png")).getpixel((px, py))
    assert red == (255, 0, 0, 255)
    assert _png(viewer.get(f"/tiles/{roads}/mask/{outside}.png")).getpixel((qx, qy))[3] == 0  # transparent
    for index, layer in [(roads, "rgb"), (roads, "cir"), (roads, "prob"), (classes, "classes")]:
        image = _png(viewer.get(f"/tiles/{index}/{layer}/{inside}.png"))
        assert image.getpixel((px, py))[3] == 255, layer
        assert np.asarray(image)[..., :3].any(), layer
    truth = viewer.get(f"/tiles/{roads}/truth/{inside}.png")
    assert _png(truth).getpixel((px, py)) == (0, 200, 83, 255)  # road in truth and mask: true positive
    below, (bx, by) = _tile_pixel(mask, 100, 3)
    assert _png(viewer.get(f"/tiles/{roads}/truth/{below}.png")).getpixel((bx, by)) == (255, 145, 0, 255)
    graph = viewer.get(f"/vectors/{roads}/0.geojson")
    assert b'"FeatureCollection"' in graph


def test_pixel_values_on_click(viewer: Viewer) -> None:
    with rasterio.open(viewer.run / "roads" / "naip.tif") as ds:
        x, y = ds.transform * (10.5, 10.5)
        (lon,), (lat,) = warp_points(ds.crs, "EPSG:4326", [x], [y])
        p = float(ds.read(1)[10, 10]) / 254
    answer = json.loads(viewer.get(f"/point?lon={lon}&lat={lat}"))
    by_tile = {t["tile"]: t for t in answer["tiles"]}
    assert by_tile["roads/naip"]["values"]["prob"][0] == pytest.approx(p, abs=1e-3)
    assert by_tile["classes/naip"]["classes"] in CLASSES


def test_clicking_a_tile_moves_the_map(viewer: Viewer) -> None:
    driver = viewer.driver
    driver.execute_script("window.satcnnMap.setView([0, 0], 3, {animate: false})")
    item = driver.find_element("css selector", "#tiles li[data-index='1']")
    item.click()
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 10).until(lambda d: d.execute_script("return window.satcnnMap.getZoom()") > 15)
    lat, lon = driver.execute_script("const c = window.satcnnMap.getCenter(); return [c.lat, c.lng]")
    assert lat == pytest.approx(47.034, abs=0.01) and lon == pytest.approx(-99.18, abs=0.01)
    assert viewer.js_errors() == []


def test_ctrl_c_stops_the_server(viewer: Viewer) -> None:
    viewer.server.send_signal(signal.SIGINT)
    assert viewer.server.wait(timeout=30) == 0  # Ctrl-C is a clean stop
    with pytest.raises(OSError):
        http_open(f"{viewer.base}/api/catalog", timeout=2)
