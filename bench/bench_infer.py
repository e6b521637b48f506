"""Benchmark ``run_inference`` end to end with the paper's ResUNet against the model alone.

    .venv/bin/python bench/bench_infer.py --size 1024 --threads 2   # writes bench/results/infer.md

One run: a synthetic 4-band uint8 GeoTIFF of ``size``^2 pixels, a ResUNet with the paper's filters
``(64, 128, 256, 512)`` and random weights saved as a satcnn checkpoint, then

* ``end_to_end``: ``run_inference`` (load checkpoint, validate, read, normalise, forward, write
  the probability COG with overviews, manifest), no MLflow;
* ``model_only``: forward passes of the same number of windows of the same shape and batch size,
  tensors already in memory.

Both run in both memory formats: the default (``channels_last: auto``, contiguous on CPU) and
channels-last. The headline ratio compares end to end with model only in the default format.

Throughput is raster megapixels per second. Peak memory for large rasters is measured by
``bench/bench_infer_core.py`` (per raster size, in subprocesses).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
import torch
from rasterio.transform import from_origin

from satcnn.inference import InferenceOptions, load_model, run_inference
from satcnn.inference.windows import computed_ratio, tile_grid
from satcnn.models.checkpoint import CheckpointMeta, ModelSpec, save_checkpoint

RESULTS = Path(__file__).parent / "results" / "infer.md"


def make_raster(path: Path, size: int) -> None:
    """Smooth random 4-band uint8 scene (tiled GeoTIFF, EPSG:32633, 1 m)."""
    rng = np.random.default_rng(0)
    small = rng.integers(0, 255, (4, size // 16, size // 16)).astype(np.float32)
    data = np.kron(small, np.ones((16, 16), np.float32)).astype(np.uint8)
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
    }
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data)


def make_checkpoint(path: Path) -> None:
    """The paper's ResUNet (4 bands, random weights) as a satcnn checkpoint."""
    kwargs = {"in_channels": 4, "num_classes": 1, "filters": [64, 128, 256, 512]}
    meta = CheckpointMeta(
        task="segmentation",
        model=ModelSpec("resunet", kwargs),
        bands=["red", "green", "blue", "nir"],
        mean=[120.0] * 4,
        std=[60.0] * 4,
        classes=["background", "road"],
        patch_size=512,
        input_dtype="uint8",
    )
    save_checkpoint(path, meta.model.build(), meta)


def model_only(module: torch.nn.Module, n: int, shape: tuple[int, int], batch: int) -> float:
    """Seconds for ``n`` windows of ``shape`` through ``module`` (a loaded model, in its memory format)."""
    x = torch.rand(batch, 4, *shape) * 255
    t = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, n, batch):
            module(x[: min(batch, n - i)])
    return time.perf_counter() - t


def end_to_end(ckpt: Path, scene: Path, out: Path, args: argparse.Namespace, channels_last: bool) -> float:
    """Seconds for ``run_inference`` on ``scene`` (checkpoint loading included)."""
    t = time.perf_counter()
    lm = load_model(ckpt, channels_last=channels_last)
    run_inference(
        InferenceOptions(
            lm,
            scene,
            out,
            window=args.window,
            margin=args.margin,
            batch_size=args.batch,
            track=False,
            progress=False,
        )
    )
    return time.perf_counter() - t


def main() -> None:
    """Run the benchmark and write the Markdown table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=1024, help="raster side in pixels (default 1024)")
    ap.add_argument("--window", type=int, default=512)
    ap.add_argument("--margin", type=int, default=32)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    mp = args.size**2 / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        scene, ckpt = tmpdir / "scene.tif", tmpdir / "resunet.ckpt"
        make_raster(scene, args.size)
        make_checkpoint(ckpt)
        default = load_model(ckpt)  # channels_last: auto
        tiles = tile_grid(args.size, args.size, args.window, args.margin, default.size_multiple)
        n, shape = len(tiles), (int(tiles[0].read.height), int(tiles[0].read.width))
        ratio = computed_ratio(args.size, args.size, args.window, args.margin, default.size_multiple)
        params = sum(p.numel() for p in default.module.parameters())
        e2e, alone = {}, {}
        for flag in (default.module.channels_last, not default.module.channels_last):
            e2e[flag] = end_to_end(ckpt, scene, tmpdir / f"out-{flag}", args, flag)
            alone[flag] = model_only(load_model(ckpt, channels_last=flag).module, n, shape, args.batch)
    auto = default.module.channels_last
    name = {False: "contiguous", True: "channels_last"}
    rows = [
        (f"{what}, {name[flag]}{' (default on CPU)' if flag == auto else ''}", sec, mp / sec)
        for flag in (auto, not auto)
        for what, sec in (("end to end (run_inference)", e2e[flag]), ("model only", alone[flag]))
    ]
    lines = [
        "# Batch inference: run_inference vs model only",
        "",
        f"`bench/bench_infer.py --size {args.size} --threads {args.threads}`: paper ResUNet (filters 64-512,",
        f"4 bands, random weights, {params:,} parameters), a "
        f"{args.size}x{args.size} 4-band uint8 raster ({mp:.2f} MP), windows of at most {args.window} with "
        f"margin {args.margin} ({n} windows of {shape[0]}x{shape[1]}, {ratio:.2f}x the raster's pixels), "
        f"batch {args.batch}, CPU, torch threads {args.threads}, one run each.",
        "",
        "| what | seconds | MP/s |",
        "|---|---:|---:|",
        *(f"| {what} | {sec:.1f} | {v:.3f} |" for what, sec, v in rows),
        "",
        f"Ratio end to end / model only (MP/s, default {name[auto]}): **{alone[auto] / e2e[auto]:.2f}**; "
        f"{name[not auto]}: {alone[not auto] / e2e[not auto]:.2f}. End to end includes checkpoint "
        "loading, reading, writing the COG with overviews and the manifest. `channels_last: auto` runs "
        "channels-last on CUDA only.",
        "",
        "Peak memory of the streaming core on large rasters (4k vs 16k): `bench/bench_infer_core.py`,",
        "results in `bench/results/infer_core.md`.",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
