"""``make bench-quick``: every bench of ``make bench`` at tiny sizes, in one process, into a temporary folder.

A smoke run for CI: it checks that each bench still runs and writes its results, and that
``bench/report.py`` renders them; the figures mean nothing at these sizes. One process, so torch,
Lightning and satcnn are imported once rather than once per bench (most of the time of a smoke
run on 2 cores). ``compile`` is left to ``make bench``: inductor's first compile alone takes
minutes on 2 loaded cores.

Usage::

    .venv/bin/python bench/quick.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the benches import each other by name

import bench_augment
import bench_deepsat
import bench_export
import bench_fcn
import bench_infer
import bench_infer_core
import bench_per_tile
import bench_precision
import bench_tiling
import bench_view
import report

TILING = "--size 512 --patches 8 --repeats 1"
AUGMENT = "--size 256 --patch 64 --steps 5 --patches 8 --batch-repeats 2"
PRECISION = "--filters 4 8 --batch 2 --patch 16 --window 32 --steps 1 --warmup 1 --compile off"
INFER = "--size 128 --window 64 --margin 8 --filters 4 8"
INFER_CORE = "--sizes 256 --window 128 --model pointwise --threads 1"
EXPORT = "--window 64 --batch 1 --patches 32 --repeats 1"
DEEPSAT = "--train 256 --test 128 --batch 32 --steps 3 --warmup 1"
PER_TILE = "--tiles 96"


def runs(out: Path) -> list[tuple[str, Callable[[list[str] | None], object], list[str]]]:
    """Each bench's ``main`` and its tiny arguments, writing into ``out``."""
    o = str(out)
    return [
        ("tiling", bench_tiling.main, [*TILING.split(), "--out", f"{o}/tiling.md", "--json-dir", o]),
        ("augment", bench_augment.main, [*AUGMENT.split(), "--out-dir", o]),
        ("precision", bench_precision.main, [*PRECISION.split(), "--out-dir", o]),
        ("infer", bench_infer.main, [*INFER.split(), "--out", f"{o}/infer.md", "--json-dir", o]),
        ("infer_core", bench_infer_core.main, [*INFER_CORE.split(), "--json", f"{o}/infer_core.json"]),
        ("fcn", bench_fcn.main, ["--stride", "28", "--out", f"{o}/fcn.md"]),
        ("export", bench_export.main, [*EXPORT.split(), "--out", f"{o}/export.md", "--json-dir", o]),
        ("deepsat", bench_deepsat.main, [*DEEPSAT.split(), "--out-dir", o]),
        ("view", bench_view.main, ["--size", "512", "--tiles", "2", "--out-dir", o]),
        ("per_tile", bench_per_tile.main, [*PER_TILE.split(), "--out-dir", o]),
        ("report", report.main, ["--results", o, "--out", f"{o}/performance.md"]),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="write the results here instead of a temporary folder")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.keep or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        for name, fn, bench_args in runs(out):
            t = time.perf_counter()
            fn(bench_args)
            print(f"bench-quick: {name} {time.perf_counter() - t:.1f} s", flush=True)
        if not (out / "performance.md").read_text().count("|"):
            raise SystemExit("bench-quick: performance.md has no table")
        print(f"bench-quick: all benches ran in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
