"""Benchmark test-time augmentation and one label per tile, end to end through ``run_inference``.

    .venv/bin/python bench/bench_tta.py --size 512 --threads 2   # writes bench/results/tta.json

One run each, on a synthetic 4-band uint8 scene (``bench_infer.make_raster``) and a ResUNet
with random weights (``--filters``, the paper's by default):

* road probabilities with ``--tta none``, ``flip`` and ``d4``: seconds, and the ratio to
  ``none`` (expected about 4 and 8: TTA runs the model once per transform);
* one label per tile on the real SAT-6 patch GeoTIFFs in ``data/samples`` (59 tiles of 28 x 28,
  no CRS) with a DeepSat CNN of random weights: tiles per second, against the same number of
  patches classified in one batch in memory (the cost of a file per tile).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from bench_infer import make_checkpoint, make_raster
from results_io import row, write_json

from satcnn.inference import InferenceOptions, load_model, run_inference
from satcnn.models import create_model
from satcnn.models.checkpoint import CheckpointMeta, ModelSpec, save_checkpoint

SAT6 = Path(__file__).resolve().parents[1] / "data" / "samples" / "sat6-sample" / "tif-patches" / "trn"
CLASSES = ["building", "barren_land", "trees", "grassland", "road", "water"]


def _sat6_checkpoint(path: Path) -> Path:
    torch.manual_seed(0)
    model = create_model("deepsat_cnn", in_channels=4, num_classes=6)
    meta = CheckpointMeta(
        task="classification",
        model=ModelSpec("deepsat_cnn", {"in_channels": 4, "num_classes": 6}),
        bands=["red", "green", "blue", "nir"],
        mean=[120.0] * 4,
        std=[60.0] * 4,
        classes=CLASSES,
        patch_size=28,
        input_dtype="uint8",
    )
    return save_checkpoint(path, model, meta)


def _timed(options: InferenceOptions) -> float:
    t = time.perf_counter()
    run_inference(options)
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--window", type=int, default=512)
    p.add_argument("--filters", type=int, nargs="+", default=[64, 128, 256, 512])
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        make_raster(d / "scene.tif", args.size)
        make_checkpoint(d / "resunet.ckpt", args.filters, min(512, args.window))
        seconds = {}
        for tta in ("none", "flip", "d4"):
            seconds[tta] = _timed(
                InferenceOptions(
                    d / "resunet.ckpt",
                    d / "scene.tif",
                    d / f"out_{tta}",
                    window=args.window,
                    tta=tta,  # type: ignore[arg-type]
                    track=False,
                    progress=False,
                )
            )
            ratio = seconds[tta] / seconds["none"]
            rows.append(row(f"road probabilities, --tta {tta}", seconds[tta], "s", "--tta none", ratio))

        ckpt = _sat6_checkpoint(d / "sat6.ckpt")
        n = len(list(SAT6.glob("*/*.tif")))
        s = _timed(InferenceOptions(ckpt, SAT6, d / "tiles", allow_no_crs=True, track=False, progress=False))
        lm = load_model(ckpt)
        x = torch.rand(n, 4, 28, 28) * 255
        t = time.perf_counter()
        with torch.inference_mode():
            lm.module(x).softmax(1)
        batch = time.perf_counter() - t
        rows.append(row(f"one label per tile, {n} SAT-6 GeoTIFFs", n / s, "tiles/s", "one batch in memory"))
        rows[-1]["ratio"] = (n / s) / (n / batch)
    for r in rows:
        print(f"{r['what']}: {r['value']:.3f} {r['unit']} (ratio to {r['reference']}: {r['ratio']:.3f})")
    write_json("tta", rows, vars(args))


if __name__ == "__main__":
    main()
