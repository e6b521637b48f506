"""Benchmark the streaming inference core: end-to-end vs model-only throughput, and peak memory.

Each raster size runs in its own subprocess so peak RSS (``ru_maxrss``) belongs to that size only.

    .venv/bin/python bench/bench_infer_core.py --sizes 2048 8192          # table + JSON
    .venv/bin/python bench/bench_infer_core.py --one --size 4096          # one run, JSON line

Figures reported per size:

* ``model_mps``: model-only forward throughput on the same number of windows of the same shape
  (raster megapixels / seconds, tensors already in memory);
* ``pipeline_mps``: predict_raster throughput before the COG conversion (read + model + write);
* ``end_to_end_mps``: predict_raster throughput including the COG conversion with overviews;
* ``ratio_pipeline`` / ``ratio_end_to_end``: the two above divided by ``model_mps``;
* ``rss_base_mb``: RSS after imports and creating the input; ``rss_peak_mb``: peak RSS.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import rasterio
import torch
from rasterio.transform import from_origin
from rasterio.windows import Window
from torch import nn

from satcnn.inference.segment import predict_raster
from satcnn.inference.windows import computed_ratio, tile_grid


def make_input(path: Path, size: int) -> None:
    """A 4-band uint8 tiled GeoTIFF written in strips (bounded memory)."""
    profile = {
        "driver": "GTiff",
        "count": 4,
        "height": size,
        "width": size,
        "dtype": "uint8",
        "crs": "EPSG:32633",
        "transform": from_origin(500_000.0, 4_600_000.0, 1.0, 1.0),
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "BIGTIFF": "IF_SAFER",
    }
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 255, (4, 512, size), dtype=np.uint8)
    with rasterio.open(path, "w", **profile) as ds:
        for r in range(0, size, 512):
            h = min(512, size - r)
            ds.write(np.roll(noise[:, :h], r // 512, axis=2), window=Window(0, r, size, h))


def cheap_model(kind: str) -> nn.Module:
    """``conv3``: two 3x3 convs (16 hidden channels); ``pointwise``: one 1x1 conv (I/O-bound runs)."""
    torch.manual_seed(0)
    if kind == "pointwise":
        return nn.Sequential(nn.Conv2d(4, 1, 1), nn.Sigmoid()).eval()
    return nn.Sequential(
        nn.Conv2d(4, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 1, 3, padding=1), nn.Sigmoid()
    ).eval()


def one(size: int, window: int, margin: int, batch: int, device: str, output: str, kind: str) -> dict:
    model = cheap_model(kind).to(device)
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        src, dst = Path(tmp) / "in.tif", Path(tmp) / "out.tif"
        t = time.perf_counter()
        make_input(src, size)
        make_s = time.perf_counter() - t
        rss_base = psutil.Process().memory_info().rss / 2**20

        tiles = tile_grid(size, size, window, margin)
        n_windows, shape = len(tiles), (int(tiles[0].read.height), int(tiles[0].read.width))
        n_batches = -(-n_windows // batch)
        x = torch.rand(batch, 4, *shape, device=device) * 255
        with torch.inference_mode():
            model(x)  # warm-up
            t = time.perf_counter()
            for _ in range(n_batches):
                model(x).cpu()
            model_s = time.perf_counter() - t

        stats = predict_raster(
            model,
            src,
            dst,
            window=window,
            margin=margin,
            batch_size=batch,
            device=device,
            output=output,  # type: ignore[arg-type]
            progress=False,
        )
        out_mb = dst.stat().st_size / 2**20
    mp = size * size / 1e6
    pipeline_s = stats.seconds - stats.finalize_seconds
    return {
        "size": size,
        "megapixels": round(mp, 1),
        "windows": n_windows,
        "window_shape": list(shape),
        "computed_ratio": round(computed_ratio(size, size, window, margin), 3),
        "model": kind,
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "make_input_s": round(make_s, 1),
        "model_mps": round(mp / model_s, 2),
        "pipeline_mps": round(mp / pipeline_s, 2),
        "end_to_end_mps": round(stats.megapixels_per_s, 2),
        "ratio_pipeline": round(model_s / pipeline_s, 3),
        "ratio_end_to_end": round(model_s / stats.seconds, 3),
        "in_model_s": round(stats.model_seconds, 2),
        "read_s": round(stats.read_seconds, 2),
        "write_s": round(stats.write_seconds, 2),
        "finalize_s": round(stats.finalize_seconds, 2),
        "total_s": round(stats.seconds, 2),
        "output_mb": round(out_mb, 1),
        "rss_base_mb": round(rss_base),
        "rss_peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--one", action="store_true", help="run one size in this process")
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--sizes", type=int, nargs="+", default=[4096, 16384])
    ap.add_argument("--window", type=int, default=512)
    ap.add_argument("--margin", type=int, default=32)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--output", default="prob_uint8", choices=["prob_uint8", "prob_float32", "mask"])
    ap.add_argument("--model", default="conv3", choices=["conv3", "pointwise"])
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch default)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    common = ["--window", str(args.window), "--margin", str(args.margin), "--batch", str(args.batch)]
    common += ["--device", args.device, "--output", args.output, "--model", args.model]
    common += ["--threads", str(args.threads)]
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.one:
        print(
            json.dumps(
                one(args.size, args.window, args.margin, args.batch, args.device, args.output, args.model)
            )
        )
        return
    rows = []
    for size in args.sizes:
        cmd = [sys.executable, __file__, "--one", "--size", str(size), *common]
        res = subprocess.run(cmd, check=True, capture_output=True, text=True)
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
