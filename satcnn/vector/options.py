"""The options of ``satcnn vectorize roads|classes``: one dataclass per kind, checked once.

Each field is also a flag of its subcommand (``satcnn.flags``). The road threshold follows the one
rule of ``satcnn.io.road_mask``.
"""

from __future__ import annotations

from dataclasses import dataclass

from satcnn.checks import require_at_least
from satcnn.flags import option
from satcnn.io.road_mask import THRESHOLD_RULE, check_threshold

__all__ = ["VectorizeClassesOptions", "VectorizeRoadsOptions"]


@dataclass(frozen=True, kw_only=True)
class VectorizeRoadsOptions:
    """``satcnn vectorize roads``: a road probability or mask raster to a road graph."""

    input: str = option(positional=True, help="single-band road probability or mask GeoTIFF/COG")
    out: str = option(help="output .gpkg or .parquet")
    threshold: float = option(0.5, help=f"{THRESHOLD_RULE} (default 0.5; masks: any non-zero)")
    spur_m: float = option(10.0, help="prune spurs shorter (default 10 m)")
    gap_m: float = option(10.0, help="bridge gaps shorter (default 10 m)")
    gap_angle: float = option(30.0, help="largest bend across a bridged gap (default 30 deg)")
    simplify_m: float = option(1.0, help="line tolerance (default 1 m)")
    block: int = option(2048, help="block side in pixels (default 2048)")
    halo: int = option(64, help="pixels read around each block (default 64; > road width)")
    progress: bool = option(True, help="no progress bar")
    allow_no_crs: bool = option(
        False, help="accept a raster without a CRS: its pixel grid, transform units taken as metres"
    )

    def __post_init__(self) -> None:
        check_threshold("threshold", self.threshold)
        for name in ("spur_m", "gap_m", "simplify_m"):
            require_at_least(name, getattr(self, name), 0)
        require_at_least("block", self.block, 1)
        require_at_least("halo", self.halo, 1)


@dataclass(frozen=True, kw_only=True)
class VectorizeClassesOptions:
    """``satcnn vectorize classes``: a class-map raster to polygons with class names."""

    input: str = option(positional=True, help="single-band integer class map GeoTIFF/COG")
    out: str = option(help="output .gpkg or .parquet")
    classes: str | None = option(
        None, help="class names by value, comma-separated (default: the CLASS_NAMES tag)"
    )
    simplify_m: float = option(0.0, help="tolerance (default 0: none)")
    min_area_m2: float = option(0.0, help="drop smaller polygons")
    block: int = option(2048, help="block side in pixels (default 2048)")
    progress: bool = option(True, help="no progress bar")

    def __post_init__(self) -> None:
        require_at_least("simplify_m", self.simplify_m, 0)
        require_at_least("min_area_m2", self.min_area_m2, 0)
        require_at_least("block", self.block, 1)

    @property
    def class_names(self) -> list[str] | None:
        """``classes`` as a list (``None``: the raster's CLASS_NAMES tag)."""
        return [n.strip() for n in self.classes.split(",")] if self.classes else None
