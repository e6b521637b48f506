"""``satcnn view`` over outputs without a CRS (``infer --allow-no-crs``): a pixel grid, in headless Chromium.

A tiny road folder (input, probability, mask and road graph, none with a CRS) opens on Leaflet's
``CRS.Simple``: the mask's road row is red where the pixel frame puts it, the graph lies on it,
a click gives the pixel's values, and the browser console stays free of errors.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from PIL import Image
from shapely.geometry import LineString

from satcnn.io.output_tags import OutputTags
from tests.factories import ROOT, as_terminal_job, free_port, http_open, wait_http, write_tif
from tests.factories.browser import chromium, require_browser

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:.crs. was not provided"),  # a GeoPackage without a CRS, on purpose
]

ROAD_ROW = 10
RES = 2.0  # metres per pixel in the transform: the graph's coordinates are x/y, not pixels
ORIGIN = (1000.0, 500.0)


def _no_crs_roads(out: Path) -> Path:
    """An ``infer --allow-no-crs --vector --output-type both`` folder, 64 x 48 pixels, road along row 10."""
    grid = {"crs": None, "origin": ORIGIN, "res": RES}
    write_tif(out / "tile.tif", count=3, height=48, width=64, **grid)
    road = np.zeros((1, 48, 64), "uint8")
    road[:, ROAD_ROW] = 1
    prob = write_tif(out / "tile_prob.tif", road * 254, **grid)
    mask = write_tif(out / "tile_mask.tif", road, **grid)
    for path, tags in [(prob, OutputTags("prob_uint8")), (mask, OutputTags("mask", threshold=0.5))]:
        with rasterio.open(path, "r+") as ds:
            tags.write(ds)
    y = ORIGIN[1] - (ROAD_ROW + 0.5) * RES  # the centre line of the road row, in x/y
    line = LineString([(ORIGIN[0] + RES * 0.5, y), (ORIGIN[0] + RES * 63.5, y)])
    gpd.GeoDataFrame({"edge_id": [0]}, geometry=[line], crs=None).to_file(
        out / "tile_roads.gpkg", layer="lines"
    )
    outputs = [str(out / f"tile{s}") for s in ("_prob.tif", "_mask.tif", "_roads.gpkg")]
    manifest = {"inputs": ["tile.tif"], "outputs": [{"input": str(out / "tile.tif"), "outputs": outputs}]}
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def _get(url: str) -> bytes:
    with http_open(url, timeout=60) as response:
        assert response.status == 200, url
        return bytes(response.read())


def test_no_crs_folder_opens_on_a_pixel_grid(tmp_path: Path) -> None:
    require_browser()
    run = _no_crs_roads(tmp_path / "run")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "satcnn", "view", str(run), "--port", str(port)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        preexec_fn=as_terminal_job,
    )
    driver = None
    try:
        wait_http(f"{base}/api/catalog", server)
        catalog = json.loads(_get(f"{base}/api/catalog"))
        assert catalog["pixel"] is True and catalog["tiles"][0]["bounds"] == [0.0, -48.0, 64.0, 0.0]
        # URL zoom 8 is one tile pixel per raster pixel: tile 8/0/0 holds rows and columns 0-255
        z = catalog["zoom_offset"]
        mask = Image.open(io.BytesIO(_get(f"{base}/tiles/0/mask/{z}/0/0.png"))).convert("RGBA")
        assert mask.getpixel((5, ROAD_ROW)) == (255, 0, 0, 255)  # the known road pixel, red
        assert mask.getpixel((5, ROAD_ROW + 2))[3] == 0 and mask.getpixel((70, ROAD_ROW))[3] == 0
        rgb = Image.open(io.BytesIO(_get(f"{base}/tiles/0/rgb/{z}/0/0.png"))).convert("RGBA")
        assert rgb.getpixel((5, 20))[3] == 255 and rgb.getpixel((70, 20))[3] == 0
        graph = json.loads(_get(f"{base}/vectors/0/0.geojson"))
        (x0, y0), (x1, _) = graph["features"][0]["geometry"]["coordinates"]
        assert (x0, y0, x1) == pytest.approx((0.5, -(ROAD_ROW + 0.5), 63.5))  # on the road row
        point = json.loads(_get(f"{base}/point?lon=5.5&lat={-(ROAD_ROW + 0.5)}"))
        values = point["tiles"][0]["values"]
        assert values["mask"] == [1.0] and values["prob"] == [1.0]

        driver = chromium(tmp_path / "chromium-profile", window="900,700")
        driver.get(base + "/")
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(driver, 60).until(lambda d: d.execute_script("return document.body.dataset.ready"))
        pending = "return document.querySelectorAll('img.leaflet-tile:not(.leaflet-tile-loaded)').length"
        loaded = "return document.querySelectorAll('img.leaflet-tile-loaded').length"
        WebDriverWait(driver, 60).until(
            lambda d: d.execute_script(loaded) > 0 and not d.execute_script(pending)
        )
        assert driver.execute_script("return window.satcnnMap.options.crs === L.CRS.Simple")
        assert "Pixel grid" in driver.find_element("id", "pixel-grid").text  # the page says so
        lat, lng = driver.execute_script("const c = window.satcnnMap.getCenter(); return [c.lat, c.lng]")
        assert lat == pytest.approx(-24, abs=2) and lng == pytest.approx(32, abs=2)  # the tile, fitted
        errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
    finally:
        if driver is not None:
            driver.quit()
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=30) == 0
