"""``satcnn vectorize roads|classes``: parse the options, call the library, print what was written."""

from __future__ import annotations

import argparse
import logging
import sys

from satcnn.io.road_mask import parse_threshold

__all__ = ["build_parser", "vectorize_main"]

log = logging.getLogger(__name__)

EPILOG = """\
Examples:
  satcnn vectorize roads out/tile_prob.tif --out roads.gpkg
  satcnn vectorize roads mask.tif --out roads.parquet --spur-m 15 --gap-m 20 --simplify-m 0.5
  satcnn vectorize classes out/classmap.tif --out landcover.gpkg --min-area-m2 500 --simplify-m 2

roads: layers `lines` (edge_id, u, v, length_m, bridged) and `nodes` (node_id, degree).
classes: layer `classes` (class_id, class_name, area_m2).
A .gpkg output holds every layer; a .parquet output becomes <stem>_<layer>.parquet per layer.
"""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``satcnn vectorize`` argument parser."""
    p = argparse.ArgumentParser(
        prog="satcnn vectorize",
        description="Turn road rasters into road networks and class maps into polygons.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="what", required=True)
    roads = sub.add_parser("roads", help="road probability or mask raster -> road graph (lines + nodes)")
    roads.add_argument("input", help="single-band road probability or mask GeoTIFF/COG")
    roads.add_argument("--out", required=True, help="output .gpkg or .parquet")
    roads.add_argument(
        "--threshold",
        type=parse_threshold,
        default=0.5,
        help="road where probability >= threshold, in [0, 1] (default 0.5; masks: any non-zero)",
    )
    roads.add_argument(
        "--spur-m", type=_non_negative, default=10.0, help="prune spurs shorter (default 10 m)"
    )
    roads.add_argument("--gap-m", type=_non_negative, default=10.0, help="bridge gaps shorter (default 10 m)")
    roads.add_argument(
        "--gap-angle", type=float, default=30.0, help="largest bend across a bridged gap (default 30 deg)"
    )
    roads.add_argument("--simplify-m", type=_non_negative, default=1.0, help="line tolerance (default 1 m)")
    roads.add_argument(
        "--block", type=_positive_int, default=2048, help="block side in pixels (default 2048)"
    )
    roads.add_argument(
        "--halo",
        type=_positive_int,
        default=64,
        help="pixels read around each block (default 64; > road width)",
    )
    roads.add_argument("--no-progress", action="store_true", help="no progress bar")
    classes = sub.add_parser("classes", help="class-map raster -> polygons with class names")
    classes.add_argument("input", help="single-band integer class map GeoTIFF/COG")
    classes.add_argument("--out", required=True, help="output .gpkg or .parquet")
    classes.add_argument(
        "--classes", default=None, help="class names by value, comma-separated (default: the CLASS_NAMES tag)"
    )
    classes.add_argument("--simplify-m", type=_non_negative, default=0.0, help="tolerance (default 0: none)")
    classes.add_argument("--min-area-m2", type=_non_negative, default=0.0, help="drop smaller polygons")
    classes.add_argument(
        "--block", type=_positive_int, default=2048, help="block side in pixels (default 2048)"
    )
    classes.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def vectorize_main(argv: list[str]) -> int:
    """Run ``satcnn vectorize``; 0 on success, 2 on usage errors (SatcnnError goes to the caller)."""
    args = build_parser().parse_args(argv)
    if args.what == "roads":
        from satcnn.vector.roads import vectorize_roads

        report = vectorize_roads(
            args.input,
            args.out,
            threshold=args.threshold,
            block=args.block,
            halo=args.halo,
            spur_m=args.spur_m,
            gap_m=args.gap_m,
            gap_angle=args.gap_angle,
            simplify_m=args.simplify_m,
            progress=not args.no_progress,
        )
        sys.stdout.write(
            f"{report.nodes} nodes, {report.edges} edges, {report.length_m / 1000:.3f} km of road "
            f"({report.megapixels:.1f} MP in {report.seconds:.1f} s)\n"
        )
        files = report.files
    else:
        from satcnn.vector.classes import vectorize_classes

        names = [n.strip() for n in args.classes.split(",")] if args.classes else None
        creport = vectorize_classes(
            args.input,
            args.out,
            classes=names,
            block=args.block,
            simplify_m=args.simplify_m,
            min_area_m2=args.min_area_m2,
            progress=not args.no_progress,
        )
        sys.stdout.write(f"{creport.polygons} polygons in {len(creport.area_m2)} classes\n")
        files = creport.files
    for path in files:
        sys.stdout.write(f"wrote {path}\n")
    sys.stdout.flush()
    return 0
