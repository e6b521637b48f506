"""``satcnn data synth-roads|png-to-geotiff|rasterize-roads|split-scene``: data preparation tools.

One options dataclass per tool, checked once; its fields are the tool's flags (``satcnn.flags``).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Literal

from satcnn.checks import OptionError, require_above, require_in_range
from satcnn.errors import DataFormatError
from satcnn.flags import add_subcommand, command_parser, option, parse_subcommand

__all__ = [
    "PngToGeotiffOptions",
    "RasterizeRoadsOptions",
    "SplitSceneOptions",
    "SynthRoadsOptions",
    "build_parser",
    "data_main",
]


@dataclass(frozen=True, kw_only=True)
class SynthRoadsOptions:
    """``satcnn data synth-roads``: synthetic 4-band road scenes, masks and centrelines."""

    out: str = option(help="output folder")
    count: int = option(4, help="number of scenes (default 4)")
    size: int = option(1024, help="scene width and height in pixels (default 1024)")
    seed: int = option(0, help="random seed (default 0)")
    resolution: float | None = option(None, type=float, help="metres per pixel (default: 0.5-1 m)")

    def __post_init__(self) -> None:
        from satcnn.data.synth import check_synth_options

        check_synth_options(self.count, self.size, self.seed, self.resolution)


@dataclass(frozen=True, kw_only=True)
class PngToGeotiffOptions:
    """``satcnn data png-to-geotiff``: a non-georeferenced image/mask PNG pair to GeoTIFFs."""

    image: str = option(positional=True, help="image PNG")
    mask: str = option(positional=True, help="road mask PNG")
    out: str = option(help="output folder (gets images/ and masks/)")
    resolution: float = option(1.0, help="pixel size to record (default 1.0)")
    nodata: int | None = option(
        None,
        type=int,
        help="image nodata value: pixels with every band equal to it are left out "
        "(255 for Massachusetts Roads' white areas)",
    )

    def __post_init__(self) -> None:
        require_above("resolution", self.resolution)
        require_in_range("nodata", self.nodata, 0, 255)


@dataclass(frozen=True, kw_only=True)
class RasterizeRoadsOptions:
    """``satcnn data rasterize-roads``: buffered centrelines burnt onto a raster's grid."""

    vectors: str = option(positional=True, help="centrelines file")
    like: str = option(positional=True, help="raster whose grid the mask takes")
    out: str = option(help="mask GeoTIFF to write")
    width: float = option(type=float, help="road width in metres")

    def __post_init__(self) -> None:
        require_above("width", self.width, unit="metres")


@dataclass(frozen=True, kw_only=True)
class SplitSceneOptions:
    """``satcnn data split-scene``: an image/mask pair cut into row (or column) bands."""

    image: str = option(positional=True, help="image raster")
    mask: str = option(positional=True, help="road mask on the same grid")
    out: str = option(help="output folder (gets images/ and masks/)")
    parts: str = option(
        "train=0.6,val=0.2,test=0.2",
        help="bands and their shares, from the top (rows) or the left (cols) "
        "(default train=0.6,val=0.2,test=0.2)",
    )
    axis: Literal["rows", "cols"] = option("rows", choices=("rows", "cols"), help="cut along rows or columns")

    def __post_init__(self) -> None:
        self.shares  # noqa: B018 (parses and checks)

    @property
    def shares(self) -> list[tuple[str, float]]:
        """``parts`` parsed: ``[(name, share), ...]``."""
        from satcnn.data.split_scene import parse_parts

        try:
            return parse_parts(self.parts)
        except DataFormatError as err:
            raise OptionError("parts", str(err).removeprefix("parts ")) from None


def build_parser() -> argparse.ArgumentParser:
    """The ``satcnn data`` argument parser."""
    parser = command_parser("satcnn data", "Data preparation tools.")
    sub = parser.add_subparsers(dest="tool", required=True)
    add_subcommand(
        sub,
        "synth-roads",
        SynthRoadsOptions,
        help="write synthetic 4-band road scenes, masks and centrelines (DIR/images/*.tif, DIR/masks/*.tif, "
        "DIR/centrelines/*.gpkg)",
    )
    add_subcommand(
        sub,
        "png-to-geotiff",
        PngToGeotiffOptions,
        help="convert a non-georeferenced image/mask PNG pair (e.g. Massachusetts Roads) to GeoTIFFs",
    )
    add_subcommand(
        sub,
        "rasterize-roads",
        RasterizeRoadsOptions,
        help="buffer road centrelines (GeoJSON/GeoPackage) and burn them onto a raster grid",
    )
    add_subcommand(
        sub,
        "split-scene",
        SplitSceneOptions,
        help="cut an image/mask pair into row bands (train/val/test), each a scene on the source's grid",
    )
    return parser


def data_main(argv: list[str]) -> int:
    """Run ``satcnn data``; 0 on success, 2 on usage errors (SatcnnError goes to the caller)."""
    options = parse_subcommand(build_parser(), argv)
    if isinstance(options, SynthRoadsOptions):
        from satcnn.data.synth import synth_roads

        out = options.out
        pairs = synth_roads(out, options.count, options.size, options.seed, resolution=options.resolution)
        sys.stdout.write(f"wrote {len(pairs)} scenes to {out}/images and {out}/masks\n")
    elif isinstance(options, PngToGeotiffOptions):
        from satcnn.data.convert import png_pair_to_geotiff

        image, mask = png_pair_to_geotiff(
            options.image, options.mask, options.out, resolution=options.resolution, nodata=options.nodata
        )
        sys.stdout.write(f"wrote {image} and {mask}\n")
    elif isinstance(options, SplitSceneOptions):
        from satcnn.data.split_scene import split_scene

        written = split_scene(options.image, options.mask, options.out, options.shares, axis=options.axis)
        for part, (image, mask) in written.items():
            sys.stdout.write(f"{part}: {image} and {mask}\n")
    else:
        from satcnn.data.labels import rasterize_centerlines

        rasterize_centerlines(options.vectors, options.like, options.width, out=options.out)
        sys.stdout.write(f"wrote {options.out}\n")
    return 0
