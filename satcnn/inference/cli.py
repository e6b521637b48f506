"""``satcnn infer``: parse argv into ``InferenceOptions``, call ``run_inference``, report failures.

The flags are ``InferenceOptions``' fields (``satcnn.flags``); the parser only parses: the values
are checked once, by ``InferenceOptions``, whose ``OptionError`` becomes a usage error (exit 2)
naming the flag.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from satcnn.errors import Interrupted, SatcnnError, interrupt_signal
from satcnn.flags import command_parser, parse_options
from satcnn.inference.options import InferenceOptions

logger = logging.getLogger(__name__)

__all__ = ["build_parser", "infer_main"]

EPILOG = """\
Examples:
  satcnn infer --model runs:/<run_id> --input tiles/ --output out/
  satcnn infer --model pretrained:roads-massachusetts --input tiles/ --output out/ --vector
  satcnn infer --model models:/roads@champion --input 'scenes/*.tif' --output out/ --output-type both
  satcnn infer --model runs/1/<run_id>/checkpoints/best.ckpt --input list.txt --output out/ --keep-going
  satcnn infer --model roads.ckpt --input wv3_8band.tif --output out/ --bands 5,3,2,7 --rescale percentile
  satcnn infer --model sat6.ckpt --input patches/trn/ --output preds/ --allow-no-crs   # per-class folders
  satcnn infer --model models:/roads@champion --input scenes/ --output out/ --tta d4 --vector
  satcnn infer --model sat6.ckpt --stac https://planetarycomputer.microsoft.com/api/stac/v1 \
      --collections naip --bbox=-99.05,47.02,-98.95,47.08 --datetime 2020-01-01/2020-12-31 --output out/
  satcnn infer --model sat6.ckpt --input search.geojson --output out/   # STAC items, catalogs too

Outputs: out/<input stem>.tif per input (COG), out/manifest.json, the outputs as a STAC
collection (out/collection.json, out/items/<output>.json), and for classifiers
out/class_fractions.csv. Classifier tiles of the model's patch size (or every tile, with
--per-tile) get one label each in out/predictions.csv; per-class input folders add
out/metrics.json and out/confusion_matrix.png. --vector adds out/<stem>_roads.gpkg (roads) or
out/<stem>_classes.gpkg (class maps). Finished outputs are skipped on a rerun unless --overwrite, or unless
they were made by other weights (their digest is in the COG tags) or other settings.
Sharding: torchrun/SLURM environment variables, or --shard-index R --num-shards W.
Ray: --engine ray spreads the windows of every raster over a Ray cluster (--address auto to join
one; default: a local one); pip install 'satcnn[ray]'.
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``satcnn infer`` argument parser."""
    p = command_parser(
        prog="satcnn infer",
        description="Run a satcnn model over GeoTIFF tiles and write georeferenced COGs.",
        epilog=EPILOG,
        options=InferenceOptions,
    )
    return p


def infer_main(argv: list[str], view_command: Callable[[Path], str | None] | None = None) -> int:
    """Run ``satcnn infer``; 0 when every input succeeded, 1 when any failed, 2 on usage errors.

    Args:
        argv: The arguments after ``infer``.
        view_command: The command that maps an output folder, ``None`` when ``satcnn view`` would
            refuse it (``satcnn.view.catalog.view_command``, a layer above this one); printed as a
            hint after the run.
    """
    parser = build_parser()
    options = parse_options(parser, InferenceOptions, parser.parse_args(argv))

    from satcnn.inference.runner import Engine, run_inference

    try:
        engine: Engine | None = None
        if options.engine == "ray":
            from satcnn.inference.ray_engine import RayEngine, require_ray

            require_ray()  # before the model is loaded
            engine = RayEngine(options)
        report = run_inference(options, engine)
    except SatcnnError as err:
        logger.debug("inference stopped", exc_info=True)
        sys.stderr.write(f"satcnn: error: {err}\n")
        return 1
    except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM (satcnn.cli): temporaries are removed
        signum = interrupt_signal(stop)
        raise Interrupted(
            f"interrupted by {signal.Signals(signum).name}: finished tiles are kept and temporaries "
            "removed; run the same command again to do the rest",
            128 + signum,
        ) from None
    sys.stdout.write(
        f"{len(report.done)} tiles done, {len(report.skipped)} skipped, {len(report.failures)} failed; "
        f"{report.megapixels:.2f} MP in {report.seconds:.1f} s ({report.megapixels_per_s:.3f} MP/s)\n"
        f"manifest: {report.manifest}\n"
    )
    if view_command is not None and report.manifest is not None and report.done + report.skipped:
        command = view_command(report.manifest.parent)
        if command is not None:
            sys.stdout.write(f"see them on a map: {command}\n")
    if report.stac_collection:
        sys.stdout.write(f"stac: {report.stac_collection}\n")
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
