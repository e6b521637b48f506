"""Figures of an evaluation: per-tile road overlays and the relaxed precision-recall curve.

The confusion matrix of class maps comes from :func:`satcnn.tasks.figures.confusion_matrix_figure`,
the one the classification task logs during training.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from rasterio.enums import Resampling
from rasterio.windows import Window

from satcnn.evaluate.road_sources import PredictionReader, TruthReader
from satcnn.io.raster import open_dataset
from satcnn.io.road_mask import road_mask

__all__ = ["FIGURE_SIDE", "pr_curve_figure", "road_figures", "road_tile_figure"]

FIGURE_SIDE = 512
"""Largest side, in pixels, a tile is decimated to for its figure."""


def _decimated(
    prediction: Path, truth: TruthReader, image: Path | None, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    with open_dataset(prediction) as ds, truth:
        step = max(1, math.ceil(max(ds.height, ds.width) / FIGURE_SIDE))
        shape = (max(1, ds.height // step), max(1, ds.width // step))
        whole = Window(0, 0, ds.width, ds.height)  # type: ignore[call-arg]
        prob, pred, valid = PredictionReader(ds, prediction).read_road(whole, threshold, out_shape=shape)
        road = truth.read_decimated(shape)
    rgb = None
    if image is not None:
        with open_dataset(image) as src:
            bands = list(range(1, min(3, src.count) + 1))
            rgb = src.read(bands, out_shape=(len(bands), *shape), resampling=Resampling.nearest)
    return prob, pred, valid, road, rgb


def road_tile_figure(
    prob: np.ndarray,
    valid: np.ndarray,
    truth: np.ndarray,
    threshold: float,
    title: str,
    image: np.ndarray | None = None,
    pred_road: np.ndarray | None = None,
) -> Figure:
    """(Input,) truth, prediction and overlay of one tile (true positives yellow, missed red, false
    alarms cyan); ``image`` is the input's first bands (C, H, W), drawn stretched as RGB.

    ``pred_road`` is the prediction's road mask; by default ``prob`` at ``threshold`` (the road rule
    of :mod:`satcnn.io.road_mask`).
    """
    from satcnn.tasks.figures import display_rgb

    pred = (road_mask(prob, threshold) if pred_road is None else pred_road) & valid
    overlay = np.zeros((*prob.shape, 3))
    overlay[~valid] = 0.35
    overlay[truth & pred] = (1.0, 0.85, 0.0)
    overlay[truth & ~pred & valid] = (0.9, 0.1, 0.1)
    overlay[~truth & pred] = (0.0, 0.9, 0.9)
    panels = [(display_rgb(image), "input")] if image is not None else []
    panels += [
        (truth.astype(float), "truth"),
        (np.where(valid, prob, np.nan), "prediction"),
        (overlay, "overlay"),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3.6))
    for ax, (data, name) in zip(axes, panels, strict=True):
        ax.imshow(data, cmap="gray" if data.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(name, fontsize="small")
    fig.suptitle(title, fontsize="small")
    fig.tight_layout()
    return fig


def pr_curve_figure(
    curve: tuple[Sequence[float], Sequence[float], Sequence[float]], breakeven: float
) -> Figure:
    """Relaxed precision against relaxed recall over the thresholds, with the breakeven point."""
    _, precision, recall = (np.asarray(v, dtype=float) for v in curve)
    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    ax.plot(recall, precision, marker=".", markersize=3)
    if math.isfinite(breakeven):
        ax.plot([breakeven], [breakeven], "o", color="tab:red", label=f"breakeven {breakeven:.3f}")
        ax.legend(loc="lower left", fontsize="small")
    ax.plot([0, 1], [0, 1], color="0.8", linewidth=0.8)
    ax.set(xlim=(0, 1.02), ylim=(0, 1.02), xlabel="relaxed recall", ylabel="relaxed precision")
    ax.set_title("Relaxed precision-recall (all tiles)", fontsize="small")
    fig.tight_layout()
    return fig


def road_figures(
    tiles: Sequence[tuple[Path, TruthReader, Path | None]],
    curve: tuple[Sequence[float], Sequence[float], Sequence[float]],
    metrics: Mapping[str, float],
    threshold: float,
) -> dict[str, Figure]:
    """The relaxed precision-recall curve and one figure per ``(prediction, truth, input)`` in ``tiles``."""
    figures = {"relaxed_pr_curve": pr_curve_figure(curve, float(metrics["breakeven"]))}
    for i, (prediction, truth, image) in enumerate(tiles):
        prob, pred, valid, road, rgb = _decimated(prediction, truth, image, threshold)
        title = f"{prediction.name} vs {truth.path.name}"
        figures[f"tile_{i:03d}_{prediction.stem}"] = road_tile_figure(
            prob, valid, road, threshold, title, rgb, pred_road=pred
        )
    return figures
