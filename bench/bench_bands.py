"""Cost of inference's input rule: band content check and ``--rescale percentile``, per raster.

One 4-band uint16 raster (``--size`` px a side, tiled, with or without overviews) and a small
road U-Net trained-on-uint16 record. Times ``run_inference`` three ways: ``--bands 1,2,3,4`` (no
content check: the reference), the default (content check on a 256 px overview), and
``--rescale percentile`` with ``--bands`` (a 1024 px decimated read for the percentiles). The
checks alone are timed too (``InputRule.reader``).

Usage::

    .venv/bin/python bench/bench_bands.py [--size 2048] [--overviews]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin
from results_io import row, write_json

from satcnn.inference import InferenceOptions, run_inference
from satcnn.inference.input_rule import InputRule
from satcnn.models import create_model
from satcnn.models.checkpoint import CheckpointMeta, ModelSpec, save_checkpoint

BANDS = ["red", "green", "blue", "nir"]


def _raster(path: Path, size: int, overviews: bool) -> Path:
    rng = np.random.default_rng(0)
    profile = {
        "driver": "GTiff", "height": size, "width": size, "count": 4, "dtype": "uint16",
        "crs": "EPSG:32633", "transform": from_origin(500_000, 4_600_000, 0.5, 0.5),
        "tiled": True, "blockxsize": 512, "blockysize": 512,
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as ds:
        for r in range(0, size, 512):
            block = rng.integers(0, 2048, size=(4, min(512, size - r), size), dtype=np.uint16)
            ds.write(block, window=rasterio.windows.Window(0, r, size, block.shape[1]))
        if overviews:
            ds.build_overviews([2, 4, 8, 16], rasterio.enums.Resampling.nearest)
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--size", type=int, default=2048)
    p.add_argument("--overviews", action="store_true")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        src = _raster(d / "scene.tif", args.size, args.overviews)
        kwargs = {"in_channels": 4, "num_classes": 1, "base_filters": 8, "depth": 2}
        pcts = [[20.0, 40.0, 2000.0, 2030.0]] * 4
        meta = CheckpointMeta(
            task="segmentation", model=ModelSpec("unet", kwargs), bands=BANDS, mean=[1024.0] * 4,
            std=[590.0] * 4, patch_size=64, input_dtype="uint16", percentiles=pcts,
        )  # fmt: skip
        ckpt = save_checkpoint(d / "m.ckpt", create_model("unet", **kwargs), meta)
        rule = InputRule.of(BANDS, meta.mean, meta.std, dtype="uint16", percentiles=pcts)
        rows = []
        with rasterio.open(src) as ds:
            t = time.perf_counter()
            rule.reader(ds, src)
            checks = time.perf_counter() - t
            t = time.perf_counter()
            InputRule.of(
                BANDS, meta.mean, meta.std, spec=[1, 2, 3, 4], rescale="percentile", percentiles=pcts
            ).reader(ds, src)
            pct = time.perf_counter() - t
        times = {}
        for name, extra in [
            ("explicit --bands", {"bands": "1,2,3,4"}),
            ("default (content check)", {}),
            ("--rescale percentile", {"bands": "1,2,3,4", "rescale": "percentile"}),
        ]:
            t = time.perf_counter()
            run_inference(
                InferenceOptions(ckpt, src, d / name.replace(" ", "_"), track=False, progress=False, **extra)
            )
            times[name] = time.perf_counter() - t
        ref = times["explicit --bands"]
        rows.append(row("content check + range check (one raster)", checks, "s"))
        rows.append(row("percentile read (one raster)", pct, "s"))
        for name, seconds in times.items():
            rows.append(row(f"infer {args.size}^2, {name}", seconds, "s", "explicit --bands", seconds / ref))
        for r in rows:
            ratio = f" ({r['ratio']:.3f}x)" if r["ratio"] is not None else ""
            print(f"{r['what']}: {r['value']:.3f} {r['unit']}{ratio}")
        write_json("bands", rows, vars(args))


if __name__ == "__main__":
    main()
