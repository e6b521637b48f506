"""``satcnn infer``: parse argv into ``InferenceOptions``, call ``run_inference``, report failures.

The parser only parses: the values are checked once, by ``InferenceOptions``, whose
``OptionError`` becomes a usage error (exit 2) naming the flag.
"""

from __future__ import annotations

import argparse
import logging
import sys

from satcnn.errors import SatcnnError
from satcnn.inference.options import OUTPUT_TYPES, TTA_KINDS, InferenceOptions, OptionError

logger = logging.getLogger(__name__)

__all__ = ["build_parser", "infer_main"]

_FLAGS = {"inputs": "--input", "output_dir": "--output"}

EPILOG = """\
Examples:
  satcnn infer --model runs:/<run_id> --input tiles/ --output out/
  satcnn infer --model models:/roads@champion --input 'scenes/*.tif' --output out/ --output-type both
  satcnn infer --model runs/1/<run_id>/checkpoints/best.ckpt --input list.txt --output out/ --keep-going
  satcnn infer --model roads.ckpt --input wv3_8band.tif --output out/ --bands 5,3,2,7 --rescale percentile
  satcnn infer --model sat6.ckpt --input patches/trn/ --output preds/ --allow-no-crs   # per-class folders
  satcnn infer --model models:/roads@champion --input scenes/ --output out/ --tta d4 --vector

Outputs: out/<input stem>.tif per input (COG), out/manifest.json, and for classifiers
out/class_fractions.csv. Classifier tiles of the model's patch size (or every tile, with
--per-tile) get one label each in out/predictions.csv; per-class input folders add
out/metrics.json and out/confusion_matrix.png. --vector adds out/<stem>_roads.gpkg (roads) or
out/<stem>_classes.gpkg (class maps). Finished outputs are skipped on a rerun unless --overwrite, or unless
they were made by other weights (their digest is in the COG tags) or other settings.
Sharding: torchrun/SLURM environment variables, or --shard-index R --num-shards W.
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``satcnn infer`` argument parser."""
    p = argparse.ArgumentParser(
        prog="satcnn infer",
        description="Run a satcnn model over GeoTIFF tiles and write georeferenced COGs.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--model",
        required=True,
        help="checkpoint path, runs:/<run_id>[/<path>], models:/<name>/<version|@alias>",
    )
    p.add_argument(
        "--input",
        required=True,
        action="append",
        help="GeoTIFF, folder, glob (quoted) or list file (.txt, one path a line); repeatable",
    )
    p.add_argument("--output", required=True, help="output folder")
    p.add_argument(
        "--window",
        type=int,
        default=None,
        help="road models: largest window side (default 1088 on CPU, 1536 on CUDA)",
    )
    p.add_argument("--margin", type=int, default=32, help="road models: context pixels per side (default 32)")
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="road models: windows per forward pass (default 1 on CPU, 4 on CUDA)",
    )
    p.add_argument(
        "--output-type",
        choices=OUTPUT_TYPES,
        default="prob_uint8",
        help="road models: what to write (default prob_uint8; both = probability + <stem>_mask.tif)",
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=0.5,
        help="road models: mask threshold in [0, 1], road where probability >= threshold (default 0.5)",
    )
    p.add_argument(
        "--stride", type=int, default=None, help="classifiers: class-map stride (default patch size)"
    )
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument(
        "--precision",
        default="32",
        choices=["32", "bf16-mixed", "16-mixed"],
        help="model precision: 32, or autocast to bf16/fp16 (default 32)",
    )
    p.add_argument("--compile", action="store_true", help="compile the model with torch.compile")
    p.add_argument("--overwrite", action="store_true", help="recompute inputs whose outputs exist")
    p.add_argument(
        "--keep-going", action="store_true", help="continue after a failing input; exit 1 at the end"
    )
    p.add_argument("--no-track", action="store_true", help="do not log the run to MLflow")
    p.add_argument("--shard-index", type=int, default=None, help="this process's shard")
    p.add_argument("--num-shards", type=int, default=None, help="number of shards")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument(
        "--bands",
        default=None,
        help="source bands in the model's order: indexes (4,3,2,5) or names (red,green,blue,nir) "
        "matched against band descriptions/colour interpretation; lifts the band content check",
    )
    p.add_argument(
        "--rescale",
        default=None,
        help="none | percentile | MIN,MAX: read a raster whose data type differs from training "
        "(default: refuse it). percentile maps each band's 2-98%% range to the training range",
    )
    p.add_argument(
        "--allow-no-crs",
        action="store_true",
        help="accept inputs without a CRS; their outputs keep the pixel grid, without a CRS",
    )
    p.add_argument(
        "--per-tile",
        action="store_true",
        help="classifiers: one label per tile (predictions.csv) for tiles of any size "
        "(default: tiles of the patch size only)",
    )
    p.add_argument(
        "--tta",
        choices=TTA_KINDS,
        default="none",
        help="test-time augmentation: average probabilities over 4 flips or the 8 d4 transforms",
    )
    p.add_argument(
        "--vector",
        action="store_true",
        help="also write road graphs (<stem>_roads.gpkg) or class polygons (<stem>_classes.gpkg)",
    )
    return p


def _flag(option: str) -> str:
    """The command-line flag of an ``InferenceOptions`` field."""
    return _FLAGS.get(option, f"--{option.replace('_', '-')}")


def infer_main(argv: list[str]) -> int:
    """Run ``satcnn infer``; 0 when every input succeeded, 1 when any failed, 2 on usage errors."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        options = InferenceOptions(
            model=args.model,
            inputs=args.input,
            output_dir=args.output,
            window=args.window,
            margin=args.margin,
            batch_size=args.batch_size,
            output_type=args.output_type,
            threshold=args.threshold,
            stride=args.stride,
            device=args.device,
            precision=args.precision,
            compile=args.compile,
            overwrite=args.overwrite,
            keep_going=args.keep_going,
            progress=not args.no_progress,
            track=not args.no_track,
            shard_index=args.shard_index,
            num_shards=args.num_shards,
            bands=args.bands,
            rescale=args.rescale,
            allow_no_crs=args.allow_no_crs,
            per_tile=args.per_tile,
            tta=args.tta,
            vector=args.vector,
        )
    except OptionError as err:
        parser.error(f"argument {_flag(err.option)}: {err.problem}")

    from satcnn.inference.runner import run_inference

    try:
        report = run_inference(options)
    except SatcnnError as err:
        logger.debug("inference stopped", exc_info=True)
        sys.stderr.write(f"satcnn: error: {err}\n")
        return 1
    sys.stdout.write(
        f"{len(report.done)} tiles done, {len(report.skipped)} skipped, {len(report.failures)} failed; "
        f"{report.megapixels:.2f} MP in {report.seconds:.1f} s ({report.megapixels_per_s:.3f} MP/s)\n"
        f"manifest: {report.manifest}\n"
    )
    if report.predictions_csv:
        sys.stdout.write(f"predictions: {report.predictions_csv}\n")
    if report.metrics_json:
        sys.stdout.write(f"metrics: {report.metrics_json}\n")
    if report.mlflow_run_id:
        sys.stdout.write(f"mlflow run id: {report.mlflow_run_id}\n")
    sys.stdout.flush()
    for r in report.failures:
        sys.stderr.write(f"satcnn: error: {r.error}\n")
    return 0 if report.ok else 1
