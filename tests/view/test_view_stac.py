"""``satcnn view`` of the outputs' STAC collection (``collection.json``): served without the manifest."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import morecantile
import pytest
from PIL import Image

from satcnn.inference import InferenceOptions, run_inference
from tests.factories import (
    ROOT,
    VEGAS,
    as_terminal_job,
    crop,
    free_port,
    http_open,
    pan_road_checkpoint,
    satcnn,
    wait_http,
)


@pytest.mark.slow
def test_view_serves_a_stac_collection_of_outputs(tmp_path: Path) -> None:
    ckpt = pan_road_checkpoint(tmp_path / "road.ckpt")
    tile = crop(VEGAS, tmp_path / "tile.tif", 64)
    out = tmp_path / "out"
    options = InferenceOptions(
        ckpt, tile, out, output_type="both", window=64, margin=8, track=False, progress=False
    )
    run_inference(options)
    (out / "manifest.json").unlink()  # only the collection lists the outputs now
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "satcnn", "view", str(out / "collection.json"), "--port", str(port)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        preexec_fn=as_terminal_job,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/api/catalog", server)
        with http_open(f"{base}/api/catalog", timeout=10) as response:
            tiles = json.loads(response.read())["tiles"]
        assert [t["name"] for t in tiles] == ["tile"]  # the probability and its mask: one input, one tile
        assert {layer["id"] for layer in tiles[0]["layers"]} == {"prob", "mask"}
        w, s, e, n = tiles[0]["bounds"]
        tms = morecantile.tms.get("WebMercatorQuad")
        t = tms.tile((w + e) / 2, (s + n) / 2, 18)
        with http_open(f"{base}/tiles/0/prob/{t.z}/{t.x}/{t.y}.png", timeout=30) as response:
            image = Image.open(io.BytesIO(response.read())).convert("RGBA")
        assert image.getchannel("A").getextrema()[1] == 255  # the probability is drawn there
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=30) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_view_refuses_a_json_that_is_not_a_collection(tmp_path: Path) -> None:
    bad = tmp_path / "collection.json"
    bad.write_text("[1, 2]")
    result = satcnn("view", str(bad), "--port", str(free_port()))
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert lines[0].startswith(f"satcnn: error: {bad}") and "is not a STAC collection of outputs" in lines[0]
