"""One label per tile over thousands of SAT-6 patch GeoTIFFs: the whole ``satcnn infer`` command
against plain rasterio reads of the same files (issue 24).

Copies the 48 real SAT-6 sample patches (``data/samples/sat6-sample/tif-patches/trn/<class>/``)
round-robin into ``--tiles`` files in per-class folders, writes a DeepSat CNN checkpoint (seeded
weights), then, in one run:

* plain reads: ``rasterio.open`` + ``read()`` of every file, in this process (the reference);
* after: ``python -m satcnn infer --per-tile --allow-no-crs --no-track`` in a subprocess, timed
  whole (interpreter start, model load, records included), with this tree's code;
* before (``--old DIR``, a checkout of older code, e.g. ``git worktree add /tmp/old 567c772``):
  the same command with ``PYTHONPATH=DIR``; its ``predictions.csv`` is compared with after's.

Plain reads are timed before and after the commands and the faster figure is the reference (the
machine may be shared); the 1-minute load average is recorded with the figures. Writes
``bench/results/per_tile.json``.

Usage::

    .venv/bin/python bench/bench_per_tile.py [--tiles 4032] [--old /tmp/old]
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import rasterio
import torch
from results_io import RESULTS, row, write_json

from satcnn.models import create_model
from satcnn.models.checkpoint import CheckpointMeta, ModelSpec, save_checkpoint

ROOT = Path(__file__).resolve().parent.parent
PATCHES = ROOT / "data" / "samples" / "sat6-sample" / "tif-patches" / "trn"
CLASSES = ["building", "barren", "trees", "grassland", "road", "water"]


def make_tiles(root: Path, count: int) -> list[Path]:
    """``count`` copies of the SAT-6 sample patches, cycled, in per-class folders under ``root``."""
    sources = sorted(PATCHES.glob("*/*.tif"))
    tiles = []
    for i in range(count):
        src = sources[i % len(sources)]
        dst = root / src.parent.name / f"{src.stem}_{i // len(sources):05d}.tif"
        dst.parent.mkdir(parents=True, exist_ok=True)
        tiles.append(Path(shutil.copyfile(src, dst)))
    return sorted(tiles)


def make_checkpoint(path: Path) -> Path:
    """A DeepSat CNN checkpoint for the SAT-6 classes, seeded weights."""
    torch.manual_seed(0)
    kwargs = {"in_channels": 4, "num_classes": len(CLASSES)}
    meta = CheckpointMeta(
        task="classification",
        model=ModelSpec("deepsat_cnn", kwargs),
        bands=["red", "green", "blue", "nir"],
        mean=[100.0, 110.0, 120.0, 130.0],
        std=[40.0, 45.0, 50.0, 55.0],
        classes=CLASSES,
        patch_size=28,
        input_dtype="uint8",
    )
    return save_checkpoint(path, create_model("deepsat_cnn", **kwargs), meta)


def plain_reads(tiles: list[Path]) -> float:
    """Seconds to open and read every tile with rasterio."""
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the SAT-6 patches have no CRS
        for tile in tiles:
            with rasterio.open(tile) as ds:
                ds.read()
    return time.perf_counter() - t


def infer(code: Path, ckpt: Path, tiles: Path, out: Path) -> dict[str, Any]:
    """Run the whole ``satcnn infer`` command with the code at ``code``; its seconds and stderr lines."""
    cmd = [sys.executable, "-m", "satcnn", "infer", "--model", str(ckpt), "--input", str(tiles)]
    cmd += ["--output", str(out), "--per-tile", "--allow-no-crs", "--no-track", "--no-progress"]
    t = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(code)}
    proc = subprocess.run(
        cmd, cwd=code, env=env, capture_output=True, text=True
    )  # cwd: python -m imports from it
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"bench_per_tile: {code}: infer failed:\n{proc.stderr[-2000:]}")
    print(f"bench_per_tile: {code}: {seconds:.1f} s", flush=True)
    return {"seconds": seconds, "stderr_lines": len(proc.stderr.splitlines())}


def compare(a: Path, b: Path) -> dict[str, Any]:
    """How two ``predictions.csv`` differ: identical bytes, rows with another label, largest difference."""
    with a.open() as fa, b.open() as fb:
        ra, rb = list(csv.DictReader(fa)), list(csv.DictReader(fb))
    labels = sum(x["predicted"] != y["predicted"] for x, y in zip(ra, rb, strict=True))
    diff = max(abs(float(x[c]) - float(y[c])) for x, y in zip(ra, rb, strict=True) for c in CLASSES)
    return {"identical": a.read_bytes() == b.read_bytes(), "other_labels": labels, "max_diff": diff}


def _section(
    n: int, raw: float, after: dict[str, Any], before: dict[str, Any] | None, same: Any, load: list[float]
) -> str:
    """The paragraph of ``docs/performance.md``: this run's figures in words."""
    text = (
        f"{n:,} SAT-6 patch GeoTIFFs (28 x 28 x 4, the 48 sample patches cycled, in per-class folders) "
        "through `python -m satcnn infer --per-tile --allow-no-crs --no-track`, timed whole (interpreter "
        f"start, model load, metrics and figure included): {n / after['seconds']:,.0f} tiles/s, "
        f"{raw / after['seconds']:.2f} of plain rasterio reads of the same files in the same run "
        f"({n / raw:,.0f} tiles/s, the faster of a read before and one after the commands); "
        f"{after['stderr_lines']} stderr lines."
    )
    if before is not None:
        text += (
            f" The code before batching (`--old`): {n / before['seconds']:,.0f} tiles/s "
            f"({raw / before['seconds']:.2f} of the reads), {before['stderr_lines']:,} stderr lines. "
            "Its `predictions.csv` is "
            + (
                "byte-identical."
                if same["identical"]
                else f"the same up to the 6th decimal: {same['other_labels']} rows with another label, "
                f"largest probability difference {same['max_diff']:.1g} (a batched model pass may differ "
                "from a single-tile pass in the last float bit, which can flip the rounding)."
            )
        )
    loads = ", ".join(f"{x:.2f}" for x in load)
    return text + f" Load average (1 min) before and after the timings: {loads}, on {os.cpu_count()} CPUs."


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tiles", type=int, default=4032, help="patch files (default 4032, 84 x the 48 samples)"
    )
    parser.add_argument("--old", type=Path, help="a checkout of older code to time as 'before'")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        tiles = make_tiles(tmp / "trn", args.tiles)
        ckpt = make_checkpoint(tmp / "sat6.ckpt")
        load = [os.getloadavg()[0]]
        raw = plain_reads(tiles)
        after = infer(ROOT, ckpt, tmp / "trn", tmp / "after")
        before = infer(args.old, ckpt, tmp / "trn", tmp / "before") if args.old else None
        raw = min(raw, plain_reads(tiles))
        load.append(os.getloadavg()[0])
        same = (
            compare(tmp / "before" / "predictions.csv", tmp / "after" / "predictions.csv") if before else None
        )
    n = len(tiles)
    raw_rate = n / raw
    ref = "plain rasterio reads"
    rows = [
        row(f"plain rasterio open + read of {n:,} SAT-6 patch GeoTIFFs", raw_rate, "tiles/s"),
        row(
            "satcnn infer --per-tile, whole command",
            n / after["seconds"],
            "tiles/s",
            ref,
            raw / after["seconds"],
        ),
        row("satcnn infer --per-tile, stderr lines", after["stderr_lines"], "lines"),
    ]
    if before is not None and same is not None:
        rows += [
            row(
                "before (--old), whole command",
                n / before["seconds"],
                "tiles/s",
                ref,
                raw / before["seconds"],
            ),
            row("before (--old), stderr lines", before["stderr_lines"], "lines"),
            row("after against before", before["seconds"] / after["seconds"], "x faster"),
            row("predictions.csv: rows with another label than before", same["other_labels"], "rows"),
            row("predictions.csv: largest probability difference to before", same["max_diff"], ""),
        ]
    rows.append(row("load average (1 min), before and after the timings", max(load), ""))
    notes = {
        "tiles": n,
        "load_average_1min": load,
        "predictions_identical_to_before": None if same is None else same["identical"],
    }
    section = _section(n, raw, after, before, same, load)
    write_json("per_tile", rows, {**vars(args), **notes}, args.out_dir, section=section)
    for r in rows:
        print(
            f"{r['what']}: {r['value']:,.4g} {r['unit']}"
            + (f" ({r['ratio']:.3f} of {ref})" if r["ratio"] else "")
        )


if __name__ == "__main__":
    main()
