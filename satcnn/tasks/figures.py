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
