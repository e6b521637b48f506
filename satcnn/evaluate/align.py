"""Input checks shared by the raster evaluations: file lists and grid alignment, before any compute."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from satcnn.errors import ConfigError, InputFileNotFoundError, RasterError
from satcnn.io.raster import RasterInfo, open_raster

__all__ = [
    "RASTER_SUFFIXES",
    "VECTOR_SUFFIXES",
    "check_aligned",
    "expand_rasters",
    "is_vector",
    "pair_up",
]

RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".img")
VECTOR_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".parquet", ".fgb")

# Transforms that differ by less than this share of a pixel are the same grid (GDAL round-off).
_TOLERANCE = 1e-6


def is_vector(path: Path) -> bool:
    """Whether ``path`` names a vector file (by its suffix)."""
    return path.suffix.lower() in VECTOR_SUFFIXES


def expand_rasters(paths: Sequence[str | Path], what: str) -> list[Path]:
    """Files as given; a folder becomes its ``*.tif``/``*.tiff`` files in name order.

    Raises:
        InputFileNotFoundError: a path does not exist, or a folder holds no rasters.
    """
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise InputFileNotFoundError(f"{what} not found", p)
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in (".tif", ".tiff"))
            if not found:
                raise InputFileNotFoundError(f"no {what} rasters (*.tif) in this folder", p)
            out += found
        else:
            out.append(p)
    return out


def pair_up(predictions: Sequence[Path], truths: Sequence[Path]) -> list[tuple[Path, Path]]:
    """Pair predictions with truths in order; one truth may serve every prediction.

    Raises:
        ConfigError: the counts differ (and there is not exactly one truth).
    """
    if not predictions:
        raise ConfigError("no predictions to evaluate")
    if len(truths) == 1:
        return [(p, truths[0]) for p in predictions]
    if len(truths) != len(predictions):
        raise ConfigError(
            f"{len(predictions)} predictions but {len(truths)} truths; give one truth per prediction "
            "(in the same order, or folders whose files sort alike) or one truth for all"
        )
    return list(zip(predictions, truths, strict=True))


def check_aligned(prediction: Path, truth: Path) -> tuple[RasterInfo, RasterInfo]:
    """Open both rasters and check they share CRS, transform and size.

    Returns:
        Both headers, prediction first.

    Raises:
        InputFileNotFoundError, RasterError: a file is missing or unreadable.
        RasterError: the grids differ; the message names both files and what differs.
    """
    pred = open_raster(prediction, require_crs=False)
    true = open_raster(truth, require_crs=False)
    problems = []
    if pred.crs != true.crs:
        problems.append(f"CRS {_crs_name(pred)} vs {_crs_name(true)}")
    if pred.shape != true.shape:
        problems.append(f"size {pred.height} x {pred.width} vs {true.height} x {true.width} (rows x columns)")
    if not pred.transform.almost_equals(true.transform, precision=_TOLERANCE * abs(pred.transform.a)):
        problems.append(f"transform {tuple(pred.transform)[:6]} vs {tuple(true.transform)[:6]}")
    if problems:
        raise RasterError(
            f"prediction is not aligned with truth {truth}: {'; '.join(problems)}. Resample one onto the "
            "other's grid (e.g. `gdalwarp -te ... -tr ... -t_srs ...`) or pair the right files",
            prediction,
        )
    return pred, true


def _crs_name(info: RasterInfo) -> str:
    if info.crs is None:
        return "none"
    epsg = info.crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else info.crs.to_string()[:60]
