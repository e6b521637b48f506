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

    .venv/bin/python bench/bench_ray.py [--size 2048] [--workers 1 2] [--device cuda --gpus-per-worker 1]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
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


@contextlib.contextmanager
def running_cluster() -> Iterator[str]:
    """A one-node Ray cluster (``ray start --head``) for the runs; ``ray stop`` after them."""
    ray = str(Path(sys.executable).with_name("ray"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [ray, "start", "--head", f"--port={port}", f"--num-cpus={os.cpu_count()}", "--disable-usage-stats"]
    subprocess.run(cmd, check=True, capture_output=True)
    try:
        yield "auto"  # the cluster this machine runs (its node address need not be loopback)
    finally:
        subprocess.run([ray, "stop", "--force"], capture_output=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=2048)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to run")
    p.add_argument("--filters", type=int, nargs="+", default=[8, 16, 32, 64])
    p.add_argument("--device", default=None, help="infer --device (cuda on a GPU machine)")
    p.add_argument("--gpus-per-worker", type=float, default=0.0)
    p.add_argument("--name", default="ray", help="bench/results/<name>.json")
    p.add_argument(
        "--running-cluster",
        action="store_true",
        help="also run each count against a cluster started once beforehand (`ray start --head`): "
        "the engine's cost without Ray's start-up",
    )
    a = p.parse_args()
    runs: dict[int, dict[str, Any]] = {}
    warm: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        tif = make_raster(tmp / "scene.tif", a.size)
        ckpt = make_model(tmp / "road.ckpt", a.filters)
        common = ["--model", str(ckpt), "--input", str(tif)]
        if a.device:
            common += ["--device", a.device]
        load = [os.getloadavg()[0]]
        local = infer(common, tmp / "local")
        reference = (tmp / "local" / "scene.tif").read_bytes()
        for n in a.workers:
            ray_args = ["--engine", "ray", "--workers", str(n), "--gpus-per-worker", str(a.gpus_per_worker)]
            runs[n] = infer([*common, *ray_args], tmp / f"ray{n}")
            runs[n]["same"] = (tmp / f"ray{n}" / "scene.tif").read_bytes() == reference
        if a.running_cluster:
            with running_cluster() as address:
                for n in a.workers:
                    args = [*common, "--engine", "ray", "--address", address, "--workers", str(n)]
                    warm[n] = infer([*args, "--gpus-per-worker", str(a.gpus_per_worker)], tmp / f"warm{n}")
                    warm[n]["same"] = (tmp / f"warm{n}" / "scene.tif").read_bytes() == reference
        load.append(os.getloadavg()[0])
    print(f"local {local}, ray {runs}, running cluster {warm}, load {load}")
    rows = [
        row("local runner, whole command", local["wall"], "s"),
        row("local runner, summary MP/s", local["mps"], "MP/s"),
    ]
    first = min(runs)
    for n, r in [*((n, r) for n, r in runs.items()), *((-n, r) for n, r in warm.items())]:
        label = f"--engine ray, {abs(n)} worker{'s' if abs(n) > 1 else ''}"
        if n < 0:
            label += " on a running cluster"
        rows += [
            row(f"{label}, whole command", r["wall"], "s", "local", local["wall"] / r["wall"]),
            row(f"{label}, summary MP/s", r["mps"], "MP/s", "local", r["mps"] / local["mps"]),
            row(f"{label}, outputs byte-identical to local", float(r["same"]), "bool"),
        ]
        base = runs if n > 0 else warm
        if abs(n) != first:  # scaling efficiency: speed-up over the first count, per added worker
            eff = (r["mps"] / base[first]["mps"]) / (abs(n) / first)
            rows.append(row(f"{label}, scaling efficiency vs {first}", eff, "ratio"))
    rows.append(row("load average (1 min), max of before and after", max(load), ""))
    section = (
        f"One {a.size} x {a.size} raster, ResUNet filters {a.filters}, on {os.cpu_count()} CPUs"
        f"{' and device ' + a.device if a.device else ''}; each ray figure includes starting and stopping "
        f"a local Ray cluster, except those 'on a running cluster' (`ray start --head` once before, "
        f"`--address auto`). Outputs were compared byte for byte with the local runner's. Load average "
        f"(1 min) before and after: {', '.join(f'{x:.2f}' for x in load)}."
    )
    write_json(a.name, rows, vars(a), section=section)


if __name__ == "__main__":
    main()
