"""The local runner against ``satcnn infer --engine ray`` on one machine, on the same raster (issue 20).

Writes a ``--size`` square 4-band raster (the NAIP sample tiled) and a road model checkpoint
(the paper ResUNet's layout at ``--filters``, seeded weights), then runs, each as the whole
``python -m satcnn infer`` command in a subprocess:

* local: one process;
* ray: ``--engine ray`` on a local Ray cluster that the command starts and stops itself
  (``--workers``), so Ray's start-up is in its wall time.

Both outputs must be byte-identical. Figures: wall time of each command, the MP/s of its summary
line (the run without interpreter start-up; Ray's start-up is inside the ray run's figure), and
their ratios. The 1-minute load average is recorded before and after. Writes
``bench/results/ray.json``.

Usage::

    .venv/bin/python bench/bench_ray.py [--size 2048] [--workers 1]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.windows import Window
from results_io import row, write_json

ROOT = Path(__file__).resolve().parent.parent
NAIP = ROOT / "data" / "samples" / "naip" / "m_4709963_se_14_1_20200831.tif"


def make_raster(path: Path, size: int) -> Path:
    """A ``size`` square raster of the NAIP sample's first 4 bands, tiled to fill it."""
    with rasterio.open(NAIP) as ds:
        h, w = min(ds.height, size), min(ds.width, size)
        data = ds.read(window=Window(0, 0, w, h))[:4]
        profile = {**ds.profile, "count": 4, "width": size, "height": size, "tiled": True}
    full = np.tile(data, (1, -(-size // h), -(-size // w)))[:, :size, :size]
    with rasterio.open(path, "w", **profile) as out:
        out.write(full)
    return path


def make_model(path: Path, filters: list[int]) -> Path:
    sys.path.insert(0, str(ROOT))
    from tests.factories import write_checkpoint

    return write_checkpoint(
        path,
        name="resunet",
        kwargs={"in_channels": 4, "num_classes": 1, "filters": filters},
        task="segmentation",
        patch_size=64,
    )


def infer(args: list[str], out: Path) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "satcnn",
        "infer",
        *args,
        "--output",
        str(out),
        "--no-track",
        "--no-progress",
    ]
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    mps = float(re.search(r"\(([0-9.]+) MP/s\)", done.stdout).group(1))  # type: ignore[union-attr]
    return {"wall": wall, "mps": mps}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=2048)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--filters", type=int, nargs="+", default=[8, 16, 32, 64])
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        tif = make_raster(tmp / "scene.tif", a.size)
        ckpt = make_model(tmp / "road.ckpt", a.filters)
        common = ["--model", str(ckpt), "--input", str(tif)]
        load = [os.getloadavg()[0]]
        local = infer(common, tmp / "local")
        ray = infer([*common, "--engine", "ray", "--workers", str(a.workers)], tmp / "ray")
        load.append(os.getloadavg()[0])
        same = (tmp / "local" / "scene.tif").read_bytes() == (tmp / "ray" / "scene.tif").read_bytes()
    print(f"local {local}, ray {ray}, identical outputs: {same}, load {load}")
    rows = [
        row("local runner, whole command", local["wall"], "s"),
        row(
            f"--engine ray ({a.workers} worker), whole command",
            ray["wall"],
            "s",
            "local",
            local["wall"] / ray["wall"],
        ),
        row("local runner, summary MP/s", local["mps"], "MP/s"),
        row(
            f"--engine ray ({a.workers} worker), summary MP/s",
            ray["mps"],
            "MP/s",
            "local",
            ray["mps"] / local["mps"],
        ),
        row("outputs byte-identical", float(same), "bool"),
        row("load average (1 min), max of before and after", max(load), ""),
    ]
    section = (
        f"One {a.size} x {a.size} raster, ResUNet filters {a.filters}, on {os.cpu_count()} CPUs; the ray "
        f"figures include starting and stopping a local Ray cluster. Load average (1 min) before and "
        f"after: {', '.join(f'{x:.2f}' for x in load)}."
    )
    write_json("ray", rows, vars(a), section=section)


if __name__ == "__main__":
    main()
