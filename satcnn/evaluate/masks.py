"""``satcnn evaluate roads``: road probability/mask rasters against truth rasters or centrelines.

Per tile and overall (pooled counts over all tiles) it reports pixel IoU, F1, precision and recall
and relaxed precision and recall with slack ``rho`` at ``threshold``, where a pixel is road by
the one road rule (:mod:`satcnn.io.road_mask`: probability ``>= threshold``, the rule of the
masks ``satcnn infer`` writes, so a probability output and its mask score the same), and the
breakeven point of the relaxed precision-recall curve over thresholds
(:class:`satcnn.tasks.road_metrics.RelaxedPrecisionRecall`, Mnih 2013; the curve keeps the
training metric's sweep, probability above each threshold, so training and evaluation report the
same breakeven). Only pixels valid in the prediction count (its nodata and mask).

Rasters are streamed by windows of the inference grid (:func:`satcnn.io.grid.tile_grid`) with
``rho`` pixels of context, so each pixel is counted once and sees its whole ``rho`` neighbourhood,
as on the whole raster. Files, grids and options are checked before any window is read
(centrelines are rasterised when their tile is scored), and the outputs are written only when
every tile is scored, each atomically.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from satcnn.checks import require_above, require_at_least
from satcnn.data.mask_values import check_mask_values
from satcnn.evaluate.align import check_aligned, expand_rasters, is_vector, pair_up, pick_outputs
from satcnn.evaluate.outputs import write_outputs
from satcnn.evaluate.result import EvaluationResult
from satcnn.evaluate.road_sources import PredictionReader, TruthReader
from satcnn.io.grid import tile_grid
from satcnn.io.output_tags import ROAD_KINDS
from satcnn.io.raster import open_dataset, open_raster
from satcnn.io.road_mask import check_threshold

__all__ = ["ROAD_METRICS", "WINDOW", "evaluate_roads", "road_scores"]

log = logging.getLogger(__name__)

WINDOW = 1024
"""Largest window side read at once (a few MB per window and metric state)."""

ROAD_METRICS = (
    "iou",
    "f1",
    "precision",
    "recall",
    "relaxed_precision",
    "relaxed_recall",
    "breakeven",
)


class _TileScore:
    """Pixel counts and relaxed precision/recall of one tile (merged into the overall ones).

    ``stats`` and ``at_threshold`` count the road mask (the road rule); ``relaxed`` sweeps the
    probabilities over the curve's thresholds, for the curve and its breakeven.
    """

    def __init__(self, threshold: float, rho: int) -> None:
        from torchmetrics.classification import BinaryStatScores

        from satcnn.tasks.road_metrics import RelaxedPrecisionRecall

        self.stats = BinaryStatScores(validate_args=False)
        self.at_threshold = RelaxedPrecisionRecall(rho=rho, thresholds=[0.5], threshold=0.5)
        self.relaxed = RelaxedPrecisionRecall(rho=rho, threshold=float(threshold))

    def update(self, prob: np.ndarray, road: np.ndarray, truth: np.ndarray, keep: np.ndarray) -> None:
        import torch

        p, r, t, k = (torch.from_numpy(np.ascontiguousarray(a))[None] for a in (prob, road, truth, keep))
        if k.any():
            self.stats.update(r[k].long(), t[k].long())
        self.at_threshold.update(r.float(), t.float(), valid=k)
        self.relaxed.update(p, t.float(), valid=k)

    def merge(self, other: _TileScore) -> None:
        self.stats.merge_state(other.stats)
        self.at_threshold.merge_state(other.at_threshold)
        self.relaxed.merge_state(other.relaxed)


def road_scores(tp: int, fp: int, fn: int, relaxed: dict[str, float]) -> dict[str, float]:
    """IoU, F1, precision and recall from pixel counts (NaN where undefined), plus the relaxed scores."""

    def ratio(a: int, b: int) -> float:
        return a / b if b else math.nan

    return {
        "iou": ratio(tp, tp + fp + fn),
        "f1": ratio(2 * tp, 2 * tp + fp + fn),
        "precision": ratio(tp, tp + fp),
        "recall": ratio(tp, tp + fn),
        **relaxed,
    }


def _summary(score: _TileScore) -> dict[str, float]:
    with warnings.catch_warnings():  # merged, or a tile with no valid pixel: compute without update
        warnings.filterwarnings("ignore", message=".*before the ``update``")
        tp, fp, tn, fn, _ = (int(v) for v in score.stats.compute().tolist())
        at = score.at_threshold.compute()
        relaxed = {
            "relaxed_precision": float(at["relaxed_precision"]),
            "relaxed_recall": float(at["relaxed_recall"]),
            "breakeven": float(score.relaxed.compute()["breakeven"]),
        }
    if tp + fp == 0:  # nothing predicted: precision is undefined (the training metric says 0)
        relaxed["relaxed_precision"] = math.nan
    return {
        **road_scores(tp, fp, fn, relaxed),
        "true_positives": tp,
        "false_positives": fp,
        "false_negatives": fn,
        "true_negatives": tn,
        "pixels": tp + fp + fn + tn,
        "road_pixels": tp + fn,
    }


def _score_tile(
    prediction: Path, truth: TruthReader, threshold: float, rho: int
) -> tuple[_TileScore, dict[str, Any]]:
    score = _TileScore(threshold, rho)
    with open_dataset(prediction) as ds, truth:
        pred = PredictionReader(ds, prediction)
        for tile in tile_grid(ds.height, ds.width, max(WINDOW, 2 * rho + 2), rho):
            prob, pred_road, valid = pred.read_road(tile.read, threshold)
            road = truth.read(tile.read)
            owned = np.zeros_like(valid)
            owned[tile.core_slices] = True
            score.update(prob, pred_road, road, valid & owned)
        kind = pred.kind
    return score, {"prediction": str(prediction), "truth": str(truth.path), "prediction_type": kind}


def evaluate_roads(
    predictions: Sequence[Path],
    truths: Sequence[Path],
    out_dir: Path,
    *,
    threshold: float = 0.5,
    rho: int = 3,
    buffer_m: float | None = None,
    figures: int = 8,
    images: Sequence[Path] | None = None,
    allow_other_mask_values: bool = False,
) -> EvaluationResult:
    """Score road predictions against truth rasters or centreline vectors, per tile and overall.

    Args:
        predictions: Probability (float, or uint8 with a scale) or mask rasters, one per tile, or
            folders, globs or list files of them (``*.tif`` in name order). Of a tile's
            probability and mask (``infer --output-type both``) the probability is scored; satcnn
            class maps are skipped (:func:`~satcnn.evaluate.align.pick_outputs`).
        truths: Truth road rasters (any non-zero value is road) aligned with the predictions, or
            centreline vectors (GeoJSON/GPKG), one per prediction in the same order, or one for all.
        out_dir: Folder for ``metrics.json``, ``metrics.csv`` (one row per tile, then ``overall``)
            and the figures.
        threshold: A pixel is road where its probability is at or above this, in [0, 1]
            (:mod:`satcnn.io.road_mask`).
        rho: Relaxation distance in pixels for relaxed precision/recall.
        buffer_m: Full road width in metres for rasterising centreline vectors.
        figures: At most this many per-tile figures (truth, prediction, overlay), plus the
            relaxed precision-recall curve.
        images: The input rasters (or folders), one per prediction on its grid, drawn first in
            the per-tile figures.
        allow_other_mask_values: Only warn when a truth raster holds values other than 0, 1 and
            255 (every non-zero value is road); by default such a raster is refused.

    Returns:
        The overall metrics (pooled counts), per-tile rows and the files written.

    Raises:
        InputFileNotFoundError, RasterError, DataFormatError, ConfigError: bad input, raised before
            anything is written; a misaligned pair names both files.
    """
    check_threshold("threshold", threshold)
    require_at_least("rho", rho, 0, "pixels", whole=True)
    require_above("buffer_m", buffer_m, unit="metres")
    preds = pick_outputs(expand_rasters(predictions, "prediction"), ROAD_KINDS, "roads")
    pairs = pair_up(preds, expand_rasters(truths, "truth"))
    inputs: list[Path | None] = [None] * len(pairs)
    if images is not None:
        inputs = [i for _, i in pair_up(preds, expand_rasters(images, "input"))]
    readers = []
    for (pred, truth), image in zip(pairs, inputs, strict=True):  # every check before the first window
        if is_vector(truth):
            open_raster(pred)  # needs a CRS to place the centrelines
        else:
            check_aligned(pred, truth)
        if image is not None:
            check_aligned(pred, image)
    truth_rasters = [truth for _, truth in pairs if not is_vector(truth)]
    check_mask_values(truth_rasters, allow_other_mask_values, "pass --allow-other-mask-values")
    for pred, truth in pairs:
        readers.append((pred, TruthReader(truth, pred, buffer_m)))

    overall = _TileScore(threshold, int(rho))
    rows: list[dict[str, Any]] = []
    for pred, truth_reader in readers:
        score, row = _score_tile(pred, truth_reader, threshold, int(rho))
        rows.append({**row, **_summary(score)})
        overall.merge(score)
        log.info("%s: IoU %.3f, F1 %.3f", pred.name, rows[-1]["iou"], rows[-1]["f1"])
    metrics = _summary(overall)
    settings = {"threshold": threshold, "rho": int(rho), "buffer_m": buffer_m, "tiles": len(rows)}
    result = EvaluationResult(metrics={k: float(v) for k, v in metrics.items()}, per_tile=rows, kind="roads")
    from satcnn.evaluate.figures import road_figures

    thresholds, precision, recall = overall.relaxed.curve()
    curve = (thresholds.tolist(), precision.tolist(), recall.tolist())
    result.files = write_outputs(
        result,
        Path(out_dir),
        settings=settings,
        figures=road_figures(
            [(p, t, i) for (p, t), i in zip(readers, inputs, strict=True)][:figures],
            curve,
            metrics,
            threshold,
        ),
    )
    return result
