"""The options of ``satcnn evaluate roads|classes|graph``: one dataclass per kind, checked once.

Each field is also a flag of its subcommand (``satcnn.flags``). The road threshold follows the one
rule of ``satcnn.io.road_mask``.
"""

from __future__ import annotations

from dataclasses import dataclass

from satcnn.checks import require_above, require_at_least
from satcnn.flags import option
from satcnn.io.road_mask import THRESHOLD_RULE, check_threshold

__all__ = [
    "EvaluateClassesOptions",
    "EvaluateGraphOptions",
    "EvaluateRoadsOptions",
    "EvaluateTrackingOptions",
]


@dataclass(frozen=True, kw_only=True)
class EvaluateTrackingOptions:
    """Where ``roads`` and ``classes`` log their scores (MLflow)."""

    tracking_uri: str | None = option(None, help="MLflow store (default $MLFLOW_TRACKING_URI or ./mlflow.db)")
    experiment: str = option("satcnn-evaluation", help="MLflow experiment (satcnn-evaluation)")
    inference_run: str | None = option(None, help="MLflow run id of the inference that wrote --pred")
    training_run: str | None = option(None, help="MLflow run id of the model's training")
    parent_run: str | None = option(None, help="nest the evaluation run under this MLflow run")
    track: bool = option(True, help="do not log the evaluation to MLflow")


@dataclass(frozen=True, kw_only=True)
class EvaluateRoadsOptions(EvaluateTrackingOptions):
    """``satcnn evaluate roads``: road rasters against truth rasters or centreline vectors."""

    pred: list[str] = option(nargs="+", help="prediction rasters, folders, globs, list files or hrefs")
    truth: list[str] = option(
        nargs="+", help="truth masks (folders, hrefs), or centreline vectors; one per --pred"
    )
    out_dir: str = option(help="folder for metrics.json, metrics.csv and figures")
    threshold: float = option(0.5, help=f"{THRESHOLD_RULE} (0.5)")
    rho: int = option(3, help="relaxed metrics slack in pixels (3)")
    buffer_m: float | None = option(None, type=float, help="road width in metres for vector truth")
    allow_other_mask_values: bool = option(
        False, help="read every non-zero truth value as road (default: refuse values other than 0, 1, 255)"
    )
    figures: int = option(8, help="per-tile figures at most (8)")
    images: list[str] | None = option(
        None, nargs="+", help="input rasters (folders, hrefs), drawn in the figures"
    )

    def __post_init__(self) -> None:
        check_threshold("threshold", self.threshold)
        require_at_least("rho", self.rho, 0)
        require_above("buffer_m", self.buffer_m)
        require_at_least("figures", self.figures, 0)


@dataclass(frozen=True, kw_only=True)
class EvaluateClassesOptions(EvaluateTrackingOptions):
    """``satcnn evaluate classes``: class maps against label rasters or labelled patch folders."""

    pred: list[str] = option(nargs="+", help="class-map rasters, folders, globs, list files or hrefs")
    truth: list[str] = option(
        nargs="+", help="label rasters (one per --pred) or one ROOT/<class>/*.tif folder"
    )
    out_dir: str = option(help="folder for metrics.json, metrics.csv and figures")
    classes: str | None = option(None, help="comma-separated class names (default: the maps' tags)")

    @property
    def class_names(self) -> list[str] | None:
        """``classes`` as a list (``None``: the maps' tags)."""
        return [n.strip() for n in self.classes.split(",")] if self.classes else None


@dataclass(frozen=True, kw_only=True)
class EvaluateGraphOptions:
    """``satcnn evaluate graph``: a road graph (or raster) against centrelines or another graph."""

    pred: str = option(help="prediction file")
    truth: str = option(help="ground-truth file")
    out: str | None = option(None, help="JSON report to write (default: print it)")
    csv: str | None = option(None, help="also write the metrics as a one-row CSV")
    threshold: float = option(0.5, help=f"raster inputs: {THRESHOLD_RULE} (0.5)")
    snap_m: float = option(4.0, help="APLS snapping distance (default 4 m)")
    apls_interval_m: float = option(50.0, help="APLS control-point spacing along curved edges (50 m)")
    apls_curved_eps: float = option(
        0.012, help="APLS: edges straighter than this (|diagonal - length| / length) get no points (0.012)"
    )
    apls_min_path_m: float = option(10.0, help="APLS: shorter routes are not compared (10 m)")
    max_nodes: int | None = option(None, type=int, help="APLS control points per side")
    junction_m: float = option(10.0, help="junction match distance (10 m)")
    topo_radius_m: float = option(150.0, help="TOPO subgraph radius (150 m)")
    topo_interval_m: float = option(30.0, help="TOPO hole spacing (30 m)")
    topo_hole_m: float = option(5.0, help="TOPO hole size (5 m)")
    topo_origins: int = option(20, help="TOPO origins (20)")
    seed: int = option(0, help="seed for sampled nodes and origins (0)")
    allow_no_crs: bool = option(
        False, help="accept rasters and vectors without a CRS: one pixel grid, units taken as metres"
    )

    def __post_init__(self) -> None:
        check_threshold("threshold", self.threshold)
        for name in (
            "snap_m",
            "apls_interval_m",
            "junction_m",
            "topo_radius_m",
            "topo_interval_m",
            "topo_hole_m",
        ):
            require_above(name, getattr(self, name))
        require_at_least("apls_curved_eps", self.apls_curved_eps, 0)
        require_at_least("apls_min_path_m", self.apls_min_path_m, 0)
        require_at_least("max_nodes", self.max_nodes, 1)
        require_at_least("topo_origins", self.topo_origins, 1)
