"""The commands beside LightningCLI's: ``data``, ``infer``, ``vectorize``, ``evaluate``, ``ui``, ``runs``,
``export`` and ``pipeline``.

Thin: parse, then call the library.
"""

from __future__ import annotations

import argparse
import logging
import sys

log = logging.getLogger(__name__)


def ui_main(argv: list[str]) -> int:
    """``satcnn ui [--host 127.0.0.1] [--port 5000]``: serve the MLflow UI on the project's store."""
    from satcnn.tracking.ui_cli import ui_main as run

    return run(argv)


def runs_main(argv: list[str]) -> int:
    """``satcnn runs clean``: mark runs left RUNNING by a hard-killed fit as KILLED."""
    from satcnn.tracking.runs_cli import runs_main as run

    return run(argv)


def vectorize_main(argv: list[str]) -> int:
    """``satcnn vectorize roads|classes ...``: road networks and land-cover polygons from rasters."""
    from satcnn.vector.cli import vectorize_main as run

    return run(argv)


def evaluate_main(argv: list[str]) -> int:
    """``satcnn evaluate roads|classes|graph ...``: score road masks, class maps or road graphs."""
    from satcnn.evaluate.cli import evaluate_main as run

    return run(argv)


def data_main(argv: list[str]) -> int:
    """``satcnn data synth-roads|png-to-geotiff|rasterize-roads|split-scene ...``: data preparation tools."""
    parser = argparse.ArgumentParser(prog="satcnn data", description="Data preparation tools.")
    sub = parser.add_subparsers(dest="tool", required=True)
    synth = sub.add_parser(
        "synth-roads",
        help="write synthetic 4-band road scenes, masks and centrelines (DIR/images/*.tif, DIR/masks/*.tif, "
        "DIR/centrelines/*.gpkg)",
    )
    synth.add_argument("--out", required=True, help="output folder")
    synth.add_argument("--count", type=int, default=4, help="number of scenes (default 4)")
    synth.add_argument(
        "--size", type=int, default=1024, help="scene width and height in pixels (default 1024)"
    )
    synth.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    synth.add_argument("--resolution", type=float, default=None, help="metres per pixel (default: 0.5-1 m)")
    png = sub.add_parser(
        "png-to-geotiff",
        help="convert a non-georeferenced image/mask PNG pair (e.g. Massachusetts Roads) to GeoTIFFs",
    )
    png.add_argument("image", help="image PNG")
    png.add_argument("mask", help="road mask PNG")
    png.add_argument("--out", required=True, help="output folder (gets images/ and masks/)")
    png.add_argument("--resolution", type=float, default=1.0, help="pixel size to record (default 1.0)")
    png.add_argument(
        "--nodata",
        type=int,
        default=None,
        help="image nodata value: pixels with every band equal to it are left out "
        "(255 for Massachusetts Roads' white areas)",
    )
    rast = sub.add_parser(
        "rasterize-roads",
        help="buffer road centrelines (GeoJSON/GeoPackage) and burn them onto a raster grid",
    )
    rast.add_argument("vectors", help="centrelines file")
    rast.add_argument("like", help="raster whose grid the mask takes")
    rast.add_argument("--out", required=True, help="mask GeoTIFF to write")
    rast.add_argument("--width", type=float, required=True, help="road width in metres")
    split = sub.add_parser(
        "split-scene",
        help="cut an image/mask pair into row bands (train/val/test), each a scene on the source's grid",
    )
    split.add_argument("image", help="image raster")
    split.add_argument("mask", help="road mask on the same grid")
    split.add_argument("--out", required=True, help="output folder (gets images/ and masks/)")
    split.add_argument(
        "--parts",
        default="train=0.6,val=0.2,test=0.2",
        help="bands and their shares, from the top (rows) or the left (cols) "
        "(default train=0.6,val=0.2,test=0.2)",
    )
    split.add_argument("--axis", choices=["rows", "cols"], default="rows", help="cut along rows or columns")
    args = parser.parse_args(argv)
    if args.tool == "synth-roads":
        from satcnn.data.synth import synth_roads

        pairs = synth_roads(args.out, args.count, args.size, args.seed, resolution=args.resolution)
        sys.stdout.write(f"wrote {len(pairs)} scenes to {args.out}/images and {args.out}/masks\n")
    elif args.tool == "png-to-geotiff":
        from satcnn.data.convert import png_pair_to_geotiff

        image, mask = png_pair_to_geotiff(
            args.image, args.mask, args.out, resolution=args.resolution, nodata=args.nodata
        )
        sys.stdout.write(f"wrote {image} and {mask}\n")
    elif args.tool == "split-scene":
        from satcnn.data.split_scene import parse_parts, split_scene

        written = split_scene(args.image, args.mask, args.out, parse_parts(args.parts), axis=args.axis)
        for part, (image, mask) in written.items():
            sys.stdout.write(f"{part}: {image} and {mask}\n")
    else:
        from satcnn.data.labels import rasterize_centerlines

        rasterize_centerlines(args.vectors, args.like, args.width, out=args.out)
        sys.stdout.write(f"wrote {args.out}\n")
    return 0


def infer_main(argv: list[str]) -> int:
    """``satcnn infer --model M --input I --output DIR``: georeferenced masks and class maps."""
    from satcnn.inference.cli import infer_main as run

    return run(argv)


def export_main(argv: list[str]) -> int:
    """``satcnn export --model URI --format onnx|pt2|torchscript [--out PATH]``: a model outside Python."""
    from satcnn.inference.export_cli import export_main as run

    return run(argv)


def pipeline_main(argv: list[str]) -> int:
    """``satcnn pipeline run FILE``: validate -> fit -> register -> infer -> evaluate -> report."""
    from satcnn.pipeline.cli import pipeline_main as run

    return run(argv)
