"""Remote reads: streaming inference from a loopback HTTP server (Range requests) vs the same COG on disk.

Writes a 4-band uint8 COG (512 px tiles), serves it with ``tests.factories.range_server`` in a
child process (0 ms and ``--latency`` ms added before each response), and runs ``predict_raster``
with a 1x1-conv model (I/O-bound) on the local file and on each href, in one process, interleaved
``--repeat`` times (the fastest run counts). Reports MP/s and their ratio to local, the bytes
fetched against the bytes of the full-resolution tiles the windows need, and requests per window.

Usage::

    .venv/bin/python bench/bench_remote.py [--size 2048] [--latency 50]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import rasterio
from bench_infer_core import cheap_model, make_input
from rasterio.shutil import copy
from results_io import row, write_json

from satcnn.inference.segment import predict_raster
from satcnn.inference.windows import tile_grid

ROOT = Path(__file__).resolve().parents[1]
WINDOW, MARGIN, BATCH = 512, 32, 4
LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _serve(root: Path, port: int, latency_s: float) -> subprocess.Popen[bytes]:
    main = "from tests.factories.range_server import main; main()"
    cmd = [sys.executable, "-c", main, str(root), str(port), "--latency", str(latency_s)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    for _ in range(200):
        try:
            _stats(port)
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the range server did not start")


def _stats(port: int) -> dict[str, dict[str, int]]:
    with LOOPBACK.open(f"http://127.0.0.1:{port}/-/stats", timeout=5) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


def _run(src: str | Path, dst: Path) -> float:
    stats = predict_raster(
        cheap_model("pointwise"), src, dst, window=WINDOW, margin=MARGIN, batch_size=BATCH, progress=False
    )
    return float(stats.megapixels_per_s)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--latency", type=float, default=50.0, help="added latency of the slow server (ms)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each source; the fastest counts")
    ap.add_argument("--out-dir", type=Path, default=None, help="results folder (default bench/results)")
    args = ap.parse_args(argv)
    os.environ.setdefault("NO_PROXY", "127.0.0.1")
    load = os.getloadavg()[0]
    windows = len(tile_grid(args.size, args.size, WINDOW, MARGIN))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_input(root / "plain.tif", args.size)
        cog = root / "a.tif"
        copy(root / "plain.tif", cog, driver="COG", blocksize=512)
        size, needed = cog.stat().st_size, _tile_bytes(cog)
        best: dict[float | None, float] = {}
        seen: dict[float, dict[str, dict[str, int]]] = {}
        for i in range(args.repeat):  # interleaved, so that the other load on the machine hits all alike
            best[None] = max(best.get(None, 0.0), _run(cog, root / f"out_local{i}.tif"))
            for ms in (0.0, args.latency):
                port = _free_port()  # a fresh server (a new URL): nothing in GDAL's caches
                server = _serve(root, port, ms / 1000)
                try:
                    mps = _run(f"http://127.0.0.1:{port}/a.tif", root / f"out_{ms:g}_{i}.tif")
                    best[ms] = max(best.get(ms, 0.0), mps)
                    seen[ms] = _stats(port)
                finally:
                    server.terminate()
                    server.wait()
        local = best[None]
        rows = [row(f"local COG, {args.size} px", round(local, 2), "MP/s")]
        for ms in (0.0, args.latency):
            requests, sent = seen[ms]["requests"].get("a.tif", 0), seen[ms]["sent"].get("a.tif", 0)
            rows += [
                row(
                    f"HTTP, +{ms:g} ms latency",
                    round(best[ms], 2),
                    "MP/s",
                    "local COG",
                    round(best[ms] / local, 3),
                ),
                row(f"HTTP, +{ms:g} ms: bytes fetched", sent, "B", "tiles needed", round(sent / needed, 3)),
                row(f"HTTP, +{ms:g} ms: requests per window", round(requests / windows, 2), "req/window"),
            ]
    for r in rows:
        print(
            f"{r['what']:<40} {r['value']:>12} {r['unit']:<10} {r['ratio'] if r['ratio'] is not None else ''}"
        )
    section = (
        f"One {args.size} px 4-band uint8 COG (512 px tiles, {size / 2**20:.1f} MiB), {windows} windows of "
        f"{WINDOW} px + {MARGIN} px margin "
        f"({needed / 2**20:.1f} MiB of full-resolution tiles), a 1x1-conv model (I/O-bound); "
        f"the server is a threaded Python http.server on loopback in another process. "
        f"Load average at start: {load:.2f}."
    )
    write_json(
        "remote", rows, vars(args), **({"out_dir": args.out_dir} if args.out_dir else {}), section=section
    )


def _tile_bytes(path: Path) -> int:
    """Bytes of the full-resolution tiles (what reading every window needs; overviews excluded)."""
    with rasterio.open(path) as ds:
        bh, bw = ds.block_shapes[0]
        return sum(
            int(ds.get_tag_item(f"BLOCK_SIZE_{x}_{y}", "TIFF", bidx=1) or 0)
            for y in range(-(-ds.height // bh))
            for x in range(-(-ds.width // bw))
        )


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


if __name__ == "__main__":
    main()
