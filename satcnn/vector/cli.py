"""``satcnn vectorize roads|classes``: parse the options, call the library, print what was written."""

from __future__ import annotations

import argparse
import logging
import sys

from satcnn.flags import add_subcommand, command_parser, parse_subcommand, values
from satcnn.vector.options import VectorizeClassesOptions, VectorizeRoadsOptions

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


def build_parser() -> argparse.ArgumentParser:
    """The ``satcnn vectorize`` argument parser."""
    p = command_parser(
        prog="satcnn vectorize",
        description="Turn road rasters into road networks and class maps into polygons.",
        epilog=EPILOG,
    )
    sub = p.add_subparsers(dest="what", required=True)
    add_subcommand(
        sub,
        "roads",
        VectorizeRoadsOptions,
        help="road probability or mask raster -> road graph (lines + nodes)",
    )
    add_subcommand(
        sub, "classes", VectorizeClassesOptions, help="class-map raster -> polygons with class names"
    )
    return p


def vectorize_main(argv: list[str]) -> int:
    """Run ``satcnn vectorize``; 0 on success, 2 on usage errors (SatcnnError goes to the caller)."""
    options = parse_subcommand(build_parser(), argv)
    if isinstance(options, VectorizeRoadsOptions):
        from satcnn.vector.roads import vectorize_roads

        report = vectorize_roads(options.input, options.out, **values(options, "input", "out"))
        if not report.georeferenced:  # the one warning (pyogrio's own, per layer, is silenced)
            log.warning(
                "%s has no CRS: the road graph is on its pixel grid, without a CRS, lengths in the "
                "transform's units taken as metres (--allow-no-crs)",
                options.input,
            )
        sys.stdout.write(
            f"{report.nodes} nodes, {report.edges} edges, {report.length_m / 1000:.3f} km of road "
            f"({report.megapixels:.1f} MP in {report.seconds:.1f} s)\n"
        )
        files = report.files
    else:
        from satcnn.vector.classes import vectorize_classes

        creport = vectorize_classes(
            options.input,
            options.out,
            **values(options, "input", "out", "classes"),
            classes=options.class_names,
        )
        sys.stdout.write(f"{creport.polygons} polygons in {len(creport.area_m2)} classes\n")
        files = creport.files
    for path in files:
        sys.stdout.write(f"wrote {path}\n")
    sys.stdout.flush()
    return 0
