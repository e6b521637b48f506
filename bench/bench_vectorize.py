"""Benchmark ``vectorize_roads``: throughput (MP/s) and peak memory on synthetic road masks.

Masks are a perturbed grid of wavy roads (8 px wide, about every 256 px, some ending in the
open so there are dead ends and T junctions), written in strips so making them needs little
memory. Each size is vectorised in its own subprocess, so its peak RSS (``ru_maxrss``) belongs to
that run alone; numba compiles skan's code on a small mask first, timed apart (``jit_s``).

    .venv/bin/python bench/bench_vectorize.py                         # 4096 and 16384, JSON + table
    .venv/bin/python bench/bench_vectorize.py --sizes 2048 --block 1024

Figures per size: ``megapixels``, ``seconds`` and ``mps`` (vectorise + write the GPKG),
``nodes``, ``edges``, ``km`` of road, ``rss_base_mb`` (after imports and the numba warm-up) and
``rss_peak_mb``. Memory is flat when the 16k peak stays within 10 % of the 4k peak.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin
from rasterio.windows import Window

ROOT = Path(__file__).resolve().parents[1]
SPACING, WIDTH, STRIP = 256, 8, 512


def _roads(size: int, seed: int) -> list[tuple[float, float, float, float, int, int]]:
    """(offset, amplitude, wavelength, phase, start, stop) of each road along one axis."""
    rng = np.random.default_rng(seed)
    roads = []
    for offset in np.arange(SPACING / 2, size, SPACING, dtype=np.float64):
        start, stop = 0, size
        if rng.random() < 0.3:  # some roads end in the open: dead ends and T junctions
            start = int(rng.integers(0, size // 2))
            stop = int(rng.integers(size // 2, size))
        amp = rng.uniform(5, 40)
        roads.append(
            (offset + rng.uniform(-30, 30), amp, rng.uniform(400, 2000), rng.uniform(0, 6.28), start, stop)
        )
    return roads


def make_mask(path: Path, size: int, seed: int = 0) -> None:
    """A uint8 road mask (1 = road), tiled, written strip by strip."""
    profile = {
        "driver": "GTiff",
        "count": 1,
        "height": size,
        "width": size,
        "dtype": "uint8",
        "crs": "EPSG:32633",
        "transform": from_origin(500_000.0, 4_600_000.0, 1.0, 1.0),
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "compress": "deflate",
        "BIGTIFF": "IF_SAFER",
    }
    across, down = _roads(size, seed), _roads(size, seed + 1)
    cols = np.arange(size, dtype=np.float64)
    with rasterio.open(path, "w", **profile) as ds:
        for r in range(0, size, STRIP):
            h = min(STRIP, size - r)
            rows = np.arange(r, r + h, dtype=np.float64)
            strip = np.zeros((h, size), dtype=np.uint8)
            for offset, amp, wave, phase, start, stop in across:  # west-east roads: row = f(col)
                if offset + amp + WIDTH < r or offset - amp - WIDTH > r + h:
                    continue
                centre = offset + amp * np.sin(2 * np.pi * cols / wave + phase)
                near = np.abs(rows[:, None] - centre[None, :]) < WIDTH / 2
                near[:, :start] = False
                near[:, stop:] = False
                strip |= near.astype(np.uint8)
            for offset, amp, wave, phase, start, stop in down:  # south-north roads: col = f(row)
                centre = offset + amp * np.sin(2 * np.pi * rows / wave + phase)
                inside = (rows >= start) & (rows < stop)
                for i in np.flatnonzero(inside):
                    lo, hi = int(np.ceil(centre[i] - WIDTH / 2)), int(np.floor(centre[i] + WIDTH / 2))
                    strip[i, max(lo, 0) : max(min(hi + 1, size), 0)] = 1
            ds.write(strip, 1, window=Window(0, r, size, h))


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one(src: Path, block: int, halo: int) -> dict[str, float | int]:
    """Vectorise ``src`` in this process (after a numba warm-up) and measure it."""
    from satcnn.vector.roads import vectorize_roads

    with tempfile.TemporaryDirectory() as tmp:
        warm = Path(tmp) / "warm.tif"
        make_mask(warm, 256)
        t = time.perf_counter()
        vectorize_roads(warm, Path(tmp) / "warm.gpkg")
        jit_s = time.perf_counter() - t
        base = _rss_mb()
        report = vectorize_roads(src, Path(tmp) / "roads.gpkg", block=block, halo=halo)
        return {
            "megapixels": round(report.megapixels, 1),
            "block": block,
            "halo": halo,
            "jit_s": round(jit_s, 1),
            "seconds": round(report.seconds, 1),
            "mps": round(report.megapixels_per_s, 2),
            "nodes": report.nodes,
            "edges": report.edges,
            "km": round(report.length_m / 1000, 1),
            "rss_base_mb": round(base),
            "rss_peak_mb": round(_rss_mb()),
        }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[4096, 16384])
    p.add_argument("--block", type=int, default=2048)
    p.add_argument("--halo", type=int, default=64)
    p.add_argument("--one", type=Path, default=None, help="(internal) vectorise this mask, print JSON")
    p.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "vectorize.json")
    args = p.parse_args()
    if args.one is not None:
        print(json.dumps(one(args.one, args.block, args.halo)))
        return
    results = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        for size in args.sizes:
            src = Path(tmp) / f"mask_{size}.tif"
            t = time.perf_counter()
            make_mask(src, size)
            made = time.perf_counter() - t
            cmd = [
                sys.executable,
                __file__,
                "--one",
                str(src),
                "--block",
                str(args.block),
                "--halo",
                str(args.halo),
            ]
            out = subprocess.run(
                cmd, capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)}
            )
            row = {
                "size": size,
                "make_mask_s": round(made, 1),
                **json.loads(out.stdout.strip().splitlines()[-1]),
            }
            print(json.dumps(row), flush=True)
            results.append(row)
            src.unlink()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "| size | MP | block | s | MP/s | nodes | edges | km | RSS base MB | RSS peak MB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        cells = [r[k] for k in ("size", "megapixels", "block", "seconds", "mps", "nodes", "edges", "km")]
        cells += [r["rss_base_mb"], r["rss_peak_mb"]]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    if len(results) >= 2:
        ratio = results[-1]["rss_peak_mb"] / results[0]["rss_peak_mb"]
        lines.append(f"\nPeak RSS {results[-1]['size']} / {results[0]['size']}: {ratio:.3f}")
    text = "\n".join(lines) + "\n"
    args.json.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
