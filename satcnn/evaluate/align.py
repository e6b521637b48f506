"""Input checks shared by the raster evaluations: file lists and grid alignment, before any compute."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from rasterio.errors import RasterioError

from satcnn.errors import ConfigError, DataFormatError, InputFileNotFoundError, RasterError
from satcnn.io.inputs import resolve_inputs
from satcnn.io.output_tags import read_output_tags, refuse_other_kind
from satcnn.io.raster import RasterInfo, open_raster

__all__ = [
    "RASTER_SUFFIXES",
    "VECTOR_SUFFIXES",
    "check_aligned",
    "expand_rasters",
    "is_vector",
    "pair_up",
    "pick_outputs",
]

log = logging.getLogger(__name__)

RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".img")
VECTOR_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".parquet", ".fgb")

# Transforms that differ by less than this share of a pixel are the same grid (GDAL round-off).
_TOLERANCE = 1e-6


def is_vector(path: Path) -> bool:
    """Whether ``path`` names a vector file (by its suffix)."""
    return path.suffix.lower() in VECTOR_SUFFIXES


def expand_rasters(paths: Sequence[str | Path], what: str) -> list[Path]:
    """Files as ``satcnn infer`` takes them: a folder (its ``*.tif``/``*.tiff`` in name order), a
    glob pattern (quoted, sorted matches), a list file (``.txt``/``.lst``/``.list``) or a file
    (:func:`satcnn.io.inputs.resolve_inputs`).

    Raises:
        InputFileNotFoundError: a path does not exist, a folder holds no rasters or a pattern
            matches nothing.
        DataFormatError: a list file is unreadable or empty.
    """
    out = resolve_inputs(paths)
    for p in out:
        if not p.exists():
            raise InputFileNotFoundError(f"{what} not found", p)
    return out


def pick_outputs(paths: Sequence[Path], kinds: Sequence[str], what: str) -> list[Path]:
    """The files an evaluation scores, chosen by their satcnn output tags; logs what it skips.

    A satcnn output of another kind (a class map among road outputs, say) is skipped, and so is
    a road mask whose probability output of the same input is also there (``infer --output-type
    both``): the probability scores the same at the threshold and gives the curve. Untagged
    rasters are all kept.

    Args:
        paths: The expanded prediction files.
        kinds: The output kinds this evaluation takes.
        what: The evaluation (``roads``), for the log line.

    Raises:
        DataFormatError: every file is a satcnn output of another kind, naming the first.
    """
    tags = {}
    for p in paths:
        try:
            tags[p] = read_output_tags(p)
        except (RasterioError, RasterError, DataFormatError):
            tags[p] = None  # the evaluation's own open names the problem
    probs = {(p.parent, t.source) for p, t in tags.items() if t and t.source and t.output.startswith("prob_")}
    kept, skipped = [], []
    for p in paths:
        t = tags[p]
        if t is None:
            kept.append(p)
        elif t.output not in kinds or (t.output == "mask" and (p.parent, t.source) in probs):
            skipped.append(p)
        else:
            kept.append(p)
    if not kept:  # nothing of this kind: say what the first file is
        refuse_other_kind(
            skipped[0], kinds, f"satcnn evaluate {what}", "pass the outputs this evaluation scores"
        )
    if skipped:
        more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
        names = ", ".join(p.name for p in skipped[:3]) + more
        log.info(
            "evaluate %s: scoring %d files, skipped %d (%s): satcnn outputs of another kind, or masks "
            "whose probability output is there too",
            what,
            len(kept),
            len(skipped),
            names,
        )
    return kept


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
            f"other's grid (e.g. `rio warp {prediction} aligned.tif --like {truth}`) or pair the right files",
            prediction,
        )
    return pred, true


def _crs_name(info: RasterInfo) -> str:
    if info.crs is None:
        return "none"
    epsg = info.crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else info.crs.to_string()[:60]
