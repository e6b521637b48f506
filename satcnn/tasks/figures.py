"""Matplotlib figures logged to MLflow: confusion matrices and per-class scores."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


def confusion_matrix_figure(matrix: Any, classes: Sequence[str], title: str = "Confusion matrix") -> Figure:
    """Row-normalised confusion matrix (true class by row) with the counts in each cell."""
    counts = np.asarray(matrix, dtype=np.int64)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = 1.2 + 0.75 * len(classes)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    im = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set(
        xticks=range(len(classes)),
        yticks=range(len(classes)),
        xticklabels=classes,
        yticklabels=classes,
        xlabel="predicted",
        ylabel="true",
        title=title,
    )
    plt.setp(ax.get_xticklabels(), rotation=35, ha="right")
    for (i, j), n in np.ndenumerate(counts):
        ax.text(j, i, str(n), ha="center", va="center", color="white" if rates[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of true class")
    fig.tight_layout()
    return fig


def per_class_scores_figure(
    scores: Mapping[str, Sequence[float]], classes: Sequence[str], title: str
) -> Figure:
    """Grouped bars of per-class scores (precision, recall, F1)."""
    fig, ax = plt.subplots(figsize=(1.5 + 1.1 * len(classes), 3.6))
    width = 0.8 / max(len(scores), 1)
    x = np.arange(len(classes))
    for k, (name, values) in enumerate(scores.items()):
        ax.bar(x + (k - (len(scores) - 1) / 2) * width, values, width, label=name)
    ax.set(xticks=x, xticklabels=classes, ylim=(0, 1.05), ylabel="score", title=title)
    plt.setp(ax.get_xticklabels(), rotation=35, ha="right")
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    return fig


def task_figures(task: Any, stage: str) -> dict[str, Figure]:
    """The figures a task offers for ``stage`` (``task.figures(stage)``), or none."""
    make = getattr(task, "figures", None)
    return make(stage) if callable(make) else {}


def close(fig: Figure) -> None:
    """Free a figure's memory."""
    plt.close(fig)


def display_rgb(image: Any) -> np.ndarray:
    """A (C, H, W) raw image as an (H, W, 3) array in [0, 1]: bands 1-3 (or band 1 as grey),
    each stretched between its 2nd and 98th percentiles."""
    arr = np.asarray(image, dtype=np.float64)
    rgb = arr[:3] if arr.shape[0] >= 3 else np.repeat(arr[:1], 3, axis=0)
    lo = np.percentile(rgb, 2, axis=(1, 2), keepdims=True)
    hi = np.percentile(rgb, 98, axis=(1, 2), keepdims=True)
    return np.clip((rgb - lo) / np.maximum(hi - lo, 1e-9), 0, 1).transpose(1, 2, 0)


def road_overlay_figure(images: Any, masks: Any, probs: Any, threshold: float = 0.5) -> Figure:
    """One row per patch: the image, the true roads, the predicted probability, and an overlay
    (true positives yellow, missed roads red, false alarms cyan)."""
    n = len(images)
    fig, axes = plt.subplots(n, 4, figsize=(10, 2.6 * n), squeeze=False)
    for row in range(n):
        rgb = display_rgb(images[row])
        truth = np.asarray(masks[row][0]) > 0.5
        prob = np.asarray(probs[row][0], dtype=np.float64)
        pred = prob > threshold
        overlay = rgb * 0.6
        overlay[truth & pred] = (1.0, 0.85, 0.0)
        overlay[truth & ~pred] = (0.9, 0.1, 0.1)
        overlay[~truth & pred] = (0.0, 0.9, 0.9)
        panels = [(rgb, "image"), (truth, "truth"), (prob, "road probability"), (overlay, "overlay")]
        for ax, (data, title) in zip(axes[row], panels, strict=True):
            ax.imshow(data, cmap="gray" if data.ndim == 2 else None, vmin=0, vmax=1)
            ax.set_axis_off()
            if row == 0:
                ax.set_title(title, fontsize="small")
    fig.tight_layout()
    return fig
