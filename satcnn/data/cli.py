"""``satcnn data synth-roads|png-to-geotiff|import-roads|fetch|rasterize-roads|split-scene``: data tools.

One options dataclass per tool, checked once; its fields are the tool's flags (``satcnn.flags``).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Literal

from satcnn.checks import OptionError, require_above, require_choice, require_in_range
from satcnn.errors import DataFormatError
from satcnn.flags import add_subcommand, command_parser, option, parse_subcommand

__all__ = [
    "FetchOptions",
    "ImportRoadsOptions",
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
class ImportRoadsOptions:
    """``satcnn data import-roads``: a Mnih-style folder (``sat/`` + ``map/``) to scenes."""

    src: str = option(positional=True, help="folder with sat/ and map/ (or split folders holding them)")
    out: str = option(help="output folder (gets images/ and masks/, or one such folder per split)")
    threshold: int = option(128, help="label values >= it are road (default 128)")
    resolution: float = option(1.0, help="pixel size in metres (default 1.0, Massachusetts' native)")
    nodata_white: bool = option(
        True,
        help="record 255 as nodata where all three bands are white (default; --no-nodata-white: keep them)",
    )

    def __post_init__(self) -> None:
        require_in_range("threshold", self.threshold, 1, 255)
        require_above("resolution", self.resolution)


@dataclass(frozen=True, kw_only=True)
class FetchOptions:
    """``satcnn data fetch``: download a dataset from its published location and import it."""

    dataset: str = option(positional=True, help="massachusetts-roads (sat-4, sat-6: says where to get them)")
    out: str = option(help="output folder (gets raw/<split>/ and <split>/images, <split>/masks)")
    splits: str = option("train,valid,test", help="comma-separated splits (default train,valid,test)")
    base_url: str | None = option(
        None, type=str, help="a mirror of the dataset's layout (default: its own site)"
    )
    threshold: int = option(128, help="label values >= it are road (default 128)")

    def __post_init__(self) -> None:
        from satcnn.data.fetch import DATASETS, MASS_ROADS_SPLITS

        require_choice("dataset", self.dataset, DATASETS)
        for split in self.split_list:
            require_choice("splits", split, list(MASS_ROADS_SPLITS))
        require_in_range("threshold", self.threshold, 1, 255)

    @property
    def split_list(self) -> list[str]:
        """``splits`` as a list."""
        return [s.strip() for s in self.splits.split(",") if s.strip()]


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
        "import-roads",
        ImportRoadsOptions,
        help="convert a Mnih-style folder (sat/ + map/, PNG, JPEG or TIFF) to scenes: labels thresholded, "
        "white no-data recorded",
    )
    add_subcommand(
        sub,
        "fetch",
        FetchOptions,
        help="download Massachusetts Roads from its published location (resumable) and import it",
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
    elif isinstance(options, ImportRoadsOptions):
        from satcnn.data.mnih import import_tree

        splits = import_tree(
            options.src, options.out, options.threshold, options.resolution, nodata_white=options.nodata_white
        )
        for split in splits:
            sys.stdout.write(
                f"wrote {len(split.stems)} scenes to {split.out}/images and {split.out}/masks "
                f"({split.with_nodata} with white nodata)\n"
            )
    elif isinstance(options, FetchOptions):
        from satcnn.data.fetch import KEYED, MASS_ROADS_URL, FetchError, fetch_massachusetts_roads

        if options.dataset in KEYED:
            raise FetchError(KEYED[options.dataset])
        splits = fetch_massachusetts_roads(
            options.out, options.split_list, options.base_url or MASS_ROADS_URL, options.threshold
        )
        for split in splits:
            sys.stdout.write(f"wrote {len(split.stems)} scenes to {split.out}/images and {split.out}/masks\n")
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
