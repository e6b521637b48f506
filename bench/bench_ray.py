"""The local runner against ``satcnn infer --engine ray`` on one machine, on the same raster (issue 20).

Writes a road model checkpoint (the paper ResUNet's layout at ``--filters``, seeded weights)
and, for each ``--size``, a square 4-band raster (the NAIP sample tiled), then runs, each as the
whole ``python -m satcnn infer`` command in a subprocess:

* local: one process;
* ray: ``--engine ray`` with each of ``--workers``, on a local Ray cluster that the command starts
  and stops itself (so Ray's start-up is in its figures), or with ``--running-cluster`` on one
  started once before all runs (``--address`` of it).

Both outputs must be byte-identical. Figures: wall time of each command, the MP/s of its summary
line (the run without interpreter start-up; Ray's start-up is inside the ray run's figure), and
their ratios. The 1-minute load average is recorded before and after. Writes
``bench/results/<--name>.json``.

With several ``--size`` values the seconds of each engine are fitted as ``start-up + MP / rate``:
the engine's fixed cost apart from its speed on further pixels.

Usage::

    .venv/bin/python bench/bench_ray.py [--size 4096 8192] [--workers 1 2] [--running-cluster]
        [--device cuda --gpus-per-worker 1]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
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
    """A one-node Ray cluster for the runs (``ray.cluster_utils.Cluster``, as ``ray start --head``
    would make); its address, and only its processes stopped after (``ray stop`` would stop every
    Ray cluster of this user on the machine)."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": os.cpu_count(), "include_dashboard": False}
    )
    try:
        yield str(cluster.address)
    finally:
        cluster.shutdown()


def fit(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least squares ``seconds = fixed + megapixels / rate`` through ``(megapixels, seconds)``:
    ``(fixed, rate)``, the start-up seconds and the MP/s of each further megapixel."""
    mp, sec = np.array(points, dtype=float).T
    slope, fixed = np.polyfit(mp, sec, 1)
    return float(fixed), float(1 / slope)


def best(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """The faster of two runs of one configuration (the machine is shared: the slower one waited);
    outputs must have been identical in both."""
    return {**max(a, b, key=lambda r: r["mps"]), "same": a.get("same", True) and b.get("same", True)}


def run_local(a: argparse.Namespace, tmp: Path, size: int, ckpt: Path) -> tuple[list[str], dict[str, Any]]:
    """The local runner on a new ``size`` raster (with no Ray cluster about): its common arguments
    and its run (wall, MP/s)."""
    tif = make_raster(tmp / f"scene{size}.tif", size)
    common = ["--model", str(ckpt), "--input", str(tif)] + (["--device", a.device] if a.device else [])
    return common, infer(common, tmp / f"local{size}")


def run_ray(
    a: argparse.Namespace, tmp: Path, size: int, common: list[str], address: str | None
) -> dict[Any, dict[str, Any]]:
    """Each worker count on the ``size`` raster (on ``address``, else a cluster per command): each
    run's wall, MP/s and whether its output is the local runner's bytes."""
    reference = (tmp / f"local{size}" / f"scene{size}.tif").read_bytes()
    runs: dict[Any, dict[str, Any]] = {}
    for n in a.workers:
        args = [*common, "--engine", "ray", "--workers", str(n), "--gpus-per-worker", str(a.gpus_per_worker)]
        out = tmp / f"ray{size}-{n}"
        runs[n] = infer([*args, *(["--address", address] if address else [])], out)
        runs[n]["same"] = (out / f"scene{size}.tif").read_bytes() == reference
    return runs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, nargs="+", default=[4096, 8192], help="raster sides to run")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to run")
    p.add_argument("--filters", type=int, nargs="+", default=[8, 16, 32, 64])
    p.add_argument("--device", default=None, help="infer --device (cuda on a GPU machine)")
    p.add_argument("--gpus-per-worker", type=float, default=0.0)
    p.add_argument("--name", default="ray", help="bench/results/<name>.json")
    p.add_argument("--repeat", type=int, default=1, help="runs of each configuration; the fastest counts")
    p.add_argument(
        "--running-cluster",
        action="store_true",
        help="run against a cluster started once beforehand (its --address) "
        "instead of one that each command starts and stops: the engine's cost without Ray's start-up",
    )
    a = p.parse_args()
    by_size: dict[int, dict[Any, dict[str, Any]]] = {}
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        ckpt = make_model(tmp / "road.ckpt", a.filters)
        local = {size: run_local(a, tmp, size, ckpt) for size in a.size}  # before any Ray process runs
        for _ in range(a.repeat - 1):
            for size, (common, run) in local.items():
                local[size] = (common, best(run, infer(common, tmp / f"local{size}")))
        with running_cluster() if a.running_cluster else contextlib.nullcontext() as address:
            for size, (common, run) in local.items():
                by_size[size] = {"local": run, **run_ray(a, tmp, size, common, address)}
            for _ in range(a.repeat - 1):
                for size, (common, _run) in local.items():
                    again = run_ray(a, tmp, size, common, address)
                    by_size[size].update({n: best(by_size[size][n], r) for n, r in again.items()})
    load.append(os.getloadavg()[0])
    print(f"runs {by_size}, load {load}")
    where = " on a running cluster" if a.running_cluster else ""
    rows = []
    for size, runs in by_size.items():
        local = runs["local"]
        rows += [row(f"{size}², local runner, MP/s of the run", local["mps"], "MP/s")]
        first = min(a.workers)
        for n in a.workers:
            r = runs[n]
            label = f"{size}², --engine ray{where}, {n} worker{'s' if n > 1 else ''}"
            rows += [
                row(f"{label}, MP/s of the run", r["mps"], "MP/s", "local", r["mps"] / local["mps"]),
                row(f"{label}, whole command", r["wall"], "s", "local", local["wall"] / r["wall"]),
                row(f"{label}, outputs byte-identical to local", float(r["same"]), "bool"),
            ]
            if n != first:  # scaling efficiency: speed-up over the first count, per added worker
                eff = (r["mps"] / runs[first]["mps"]) / (n / first)
                rows.append(row(f"{label}, scaling efficiency vs {first}", eff, "ratio"))
    if len(by_size) > 1:  # seconds = fixed + MP / rate, from the runs' own seconds (MP / MP/s)
        points = {
            k: [(s * s / 1e6, s * s / 1e6 / r[k]["mps"]) for s, r in by_size.items()]
            for k in ["local", *a.workers]
        }
        local_fixed, local_rate = fit(points["local"])
        rows += [
            row("local runner, start-up (fit)", local_fixed, "s"),
            row("local runner, MP/s past start-up (fit)", local_rate, "MP/s"),
        ]
        for n in a.workers:
            fixed, rate = fit(points[n])
            label = f"--engine ray{where}, {n} worker{'s' if n > 1 else ''}"
            rows += [
                row(f"{label}, start-up (fit)", fixed, "s"),
                row(f"{label}, MP/s past start-up (fit)", rate, "MP/s", "local", rate / local_rate),
            ]
    rows.append(row("load average (1 min), max of before and after", max(load), ""))
    sides = ", ".join(f"{s} x {s}" for s in a.size)
    loads = ", ".join(f"{x:.2f}" for x in load)
    section = (
        f"One raster of each size ({sides}), ResUNet filters {a.filters}, on {os.cpu_count()} CPUs"
        f"{' and device ' + a.device if a.device else ''}; "
        + (
            "every ray command joins a cluster started once before (`--address` of it)"
            if a.running_cluster
            else "every ray command starts and stops its own local Ray cluster (in its figures)"
        )
        + f". Each figure is the fastest of {a.repeat} run{'s' if a.repeat > 1 else ''} of its "
        "configuration (local runs first, before any Ray process). MP/s of the run is the "
        "summary line's (the whole run, model loading included, without the interpreter's "
        "start-up); the fit splits each engine's seconds into a fixed start-up and a rate past "
        "it (`seconds = start-up + MP / rate`, through the sizes). Outputs were compared byte "
        f"for byte with the local runner's. Load average (1 min) before and after: {loads}."
    )
    write_json(a.name, rows, vars(a), section=section)


if __name__ == "__main__":
    main()
