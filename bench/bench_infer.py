"""Benchmark ``run_inference`` end to end with the paper's ResUNet against the model alone.

    .venv/bin/python bench/bench_infer.py --size 1024 --threads 2   # writes bench/results/infer.md

One run: a synthetic 4-band uint8 GeoTIFF of ``size``^2 pixels, a ResUNet with the paper's filters
``(64, 128, 256, 512)`` and random weights saved as a satcnn checkpoint, then

* ``end_to_end``: ``run_inference`` (load checkpoint, validate, read, normalise, forward, write
  the probability COG with overviews, manifest), no MLflow;
* ``model_only``: forward passes of the same number of windows of the same shape and batch size,
  tensors already in memory (contiguous and channels-last; the faster one is reported);
* ``model on distinct pixels``: the honest reference (issue 13): the model's own speed, the
  pixels it computes per second at the same window shape and batch (the faster memory format),
  as if it computed each raster pixel once; raster MP/s end to end against this, so the
  overlap between windows (``computed / raster pixels``) counts as a cost.

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
from results_io import RESULTS as RESULTS_DIR
from results_io import row, write_json

from satcnn.inference import InferenceOptions, load_model, run_inference
from satcnn.inference.windows import computed_ratio, default_window, tile_grid
from satcnn.models import create_model

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


def make_checkpoint(path: Path, filters: list[int] | None = None, patch_size: int = 512) -> None:
    """The paper's ResUNet (4 bands, random weights; other ``filters`` for smoke runs) as a checkpoint."""
    kwargs = {"in_channels": 4, "num_classes": 1, "filters": filters or [64, 128, 256, 512]}
    model = create_model("resunet", **kwargs)
    meta = {
        "format_version": 1,
        "task": "segmentation",
        "model": {"name": "resunet", "kwargs": kwargs},
        "bands": ["red", "green", "blue", "nir"],
        "mean": [120.0] * 4,
        "std": [60.0] * 4,
        "classes": ["background", "road"],
        "patch_size": patch_size,
        "input_dtype": "uint8",
        "satcnn_version": "0.1.0",
    }
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}, "satcnn": meta}, path)


def model_only(
    module: torch.nn.Module, n: int, shape: tuple[int, int], batch: int, channels_last: bool
) -> float:
    """Seconds for ``n`` windows of ``shape`` through ``module`` in batches of ``batch``."""
    x = torch.rand(batch, 4, *shape) * 255
    if channels_last:
        module = module.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    else:
        module = module.to(memory_format=torch.contiguous_format)
    t = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, n, batch):
            module(x[: min(batch, n - i)])
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and write the Markdown table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=1024, help="raster side in pixels (default 1024)")
    ap.add_argument("--window", type=int, default=None, help="default: the runner's (default_window)")
    ap.add_argument("--margin", type=int, default=32)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--filters", type=int, nargs="+", default=[64, 128, 256, 512])
    ap.add_argument(
        "--formats",
        nargs="+",
        choices=["contiguous", "channels_last"],
        default=["contiguous", "channels_last"],
        help="memory formats of the model-only runs (the faster one is the reference)",
    )
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--json-dir", type=Path, default=RESULTS_DIR, help="where infer_<size>.json goes")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    mp = args.size**2 / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        make_raster(tmpdir / "scene.tif", args.size)
        make_checkpoint(tmpdir / "resunet.ckpt", args.filters, min(512, args.window or 512))
        t = time.perf_counter()
        report = run_inference(
            InferenceOptions(
                tmpdir / "resunet.ckpt",
                tmpdir / "scene.tif",
                tmpdir / "out",
                window=args.window,
                margin=args.margin,
                batch_size=args.batch,
                track=False,
                progress=False,
            )
        )
        e2e = time.perf_counter() - t
        lm = load_model(tmpdir / "resunet.ckpt", channels_last=False)  # model_only sets each format
        args.window = args.window or default_window("cpu", lm.patch_size, lm.size_multiple)
        tiles = tile_grid(args.size, args.size, args.window, args.margin, lm.size_multiple)
        n, shape = len(tiles), (int(tiles[0].read.height), int(tiles[0].read.width))
        ratio = computed_ratio(args.size, args.size, args.window, args.margin, lm.size_multiple)
        flags = [f == "channels_last" for f in args.formats]
        cl = {flag: model_only(lm.module, n, shape, args.batch, flag) for flag in flags}
        best = min(cl, key=lambda k: cl[k])
    # the model's own speed: the pixels it computes per second, at this window shape and batch
    model_mps = n * shape[0] * shape[1] / 1e6 / cl[best]
    honest = (mp / e2e) / model_mps
    rows = [
        ("end to end (run_inference)", e2e, mp / e2e),
        *((f"model only, {'channels_last' if k else 'contiguous'}", v, mp / v) for k, v in cl.items()),
        ("model on distinct pixels (computed MP/s of the faster run)", cl[best], model_mps),
    ]
    lines = [
        "# Batch inference: run_inference vs model only",
        "",
        f"`bench/bench_infer.py --size {args.size} --threads {args.threads}`: paper ResUNet (filters 64-512,",
        f"4 bands, random weights, {sum(p.numel() for p in lm.module.parameters()):,} parameters), a "
        f"{args.size}x{args.size} 4-band uint8 raster ({mp:.2f} MP), windows of at most {args.window} with "
        f"margin {args.margin} ({n} windows of {shape[0]}x{shape[1]}, {ratio:.2f}x the raster's pixels), "
        f"batch {args.batch}, CPU, torch threads {args.threads}, one run.",
        "",
        "| what | seconds | MP/s |",
        "|---|---:|---:|",
        *(f"| {name} | {s:.1f} | {v:.3f} |" for name, s, v in rows),
        "",
        f"Ratio end to end / model only ({'channels_last' if best else 'contiguous'}, the faster): "
        f"**{(mp / e2e) / (mp / cl[best]):.2f}** (tile wall time {report.results[0].seconds:.1f} s of "
        f"{e2e:.1f} s; the rest is checkpoint loading and the manifest). "
        "The runner picks the memory format with channels_last: auto (channels-last on CUDA, and on CPU "
        "for segmentation models).",
        "",
        f"Honest figure, end to end / model on distinct pixels: **{honest:.2f}** "
        f"(computed / raster pixels {ratio:.2f}).",
        "",
        "Peak memory of the streaming core on large rasters (4k vs 16k): `bench/bench_infer_core.py`,",
        "results in `bench/results/infer_core.md`.",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))
    size = f"{args.size}x{args.size}"
    write_json(
        f"infer_{args.size}",
        [
            row(f"inference {size}, end to end", mp / e2e, "raster MP/s", "model on distinct pixels", honest),
            row(f"inference {size}, model on distinct pixels", model_mps, "MP/s"),
            row(f"inference {size}, computed / raster pixels", ratio, "x"),
        ],
        {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        args.json_dir,
    )


if __name__ == "__main__":
    main()
