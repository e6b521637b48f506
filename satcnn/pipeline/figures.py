"""The report's PNG figures, read from the pipeline's rasters at display size.

Roads: input, truth, predicted probability and overlay per held-out scene (the task's
``road_overlay_figure``), and input, probability and overlay for inputs without truth. Land
cover: the class map over the input with a legend.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.enums import Resampling

from satcnn.io.road_mask import road_mask
from satcnn.tasks import figures

__all__ = ["class_map_figure", "prediction_figure", "road_figure"]

DISPLAY = 512  # longest side of a raster as drawn


def _read(
    path: str | Path, bands: Sequence[int] | None = None, nearest: bool = False
) -> tuple[np.ndarray, Any]:
    """Bands of ``path`` at display size as float64 ``(C, H, W)``, and its bounds."""
    with rasterio.open(path) as src:
        scale = min(1.0, DISPLAY / max(src.width, src.height))
        shape = (max(1, round(src.height * scale)), max(1, round(src.width * scale)))
        indexes = list(bands) if bands else list(range(1, min(src.count, 3) + 1))
        data = src.read(
            indexes,
            out_shape=(len(indexes), *shape),
            resampling=Resampling.nearest if nearest else Resampling.average,
        )
        return data.astype(np.float64), src.bounds


def _probability(path: str | Path) -> np.ndarray:
    """A probability COG as ``(1, H, W)`` in [0, 1] (``prob_uint8`` stores ``round(p * 254)``)."""
    with rasterio.open(path) as src:
        dtype = src.dtypes[0]
    raw, _ = _read(path, [1], nearest=True)
    prob = np.where(raw == 255, 0.0, raw / 254.0) if dtype == "uint8" else np.nan_to_num(raw)
    return np.clip(prob, 0, 1)


def road_figure(image: str, truth: str, probability: str, out: Path, threshold: float = 0.5) -> Path:
    """Input, truth, probability and overlay of one scene, saved to ``out``."""
    rgb, _ = _read(image)
    mask, _ = _read(truth, [1], nearest=True)
    fig = figures.road_overlay_figure(
        [rgb], [(mask > 0).astype(float)], [_probability(probability)], threshold
    )
    fig.suptitle(Path(image).name, fontsize="small")
    fig.savefig(out, dpi=90)
    figures.close(fig)
    return out


def prediction_figure(image: str, probability: str, out: Path, threshold: float = 0.5) -> Path:
    """Input, probability and the predicted roads over the input (no truth), saved to ``out``."""
    import matplotlib.pyplot as plt

    rgb = figures.display_rgb(_read(image)[0])
    prob = _probability(probability)[0]
    overlay = rgb * 0.6
    overlay[road_mask(prob, threshold)] = (0.0, 0.9, 0.9)
    fig, axes = plt.subplots(1, 3, figsize=(7.5, 2.8))
    for ax, data, title in zip(
        axes, (rgb, prob, overlay), ("image", "road probability", "predicted roads"), strict=True
    ):
        ax.imshow(data, cmap="gray" if data.ndim == 2 else None, vmin=0, vmax=1)
        ax.set_title(title, fontsize="small")
        ax.set_axis_off()
    fig.suptitle(f"{Path(image).name} (no truth)", fontsize="small")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    figures.close(fig)
    return out


def class_map_figure(image: str, class_map: str, classes: Sequence[str], out: Path) -> Path:
    """The input beside the class map over it, with a legend of the classes present, saved to ``out``."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    from satcnn.inference.classify import default_colormap

    raw, bounds = _read(image)
    rgb = figures.display_rgb(raw)
    labels, lbounds = _read(class_map, [1], nearest=True)
    labels = labels[0]
    colours = default_colormap(len(classes))
    table = np.array([colours[i][:3] for i in range(len(classes))], dtype=np.float64) / 255.0
    shown = np.ma.masked_where(labels >= len(classes), labels)
    extent = (bounds.left, bounds.right, bounds.bottom, bounds.top)
    lextent = (lbounds.left, lbounds.right, lbounds.bottom, lbounds.top)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
    axes[0].imshow(rgb, extent=extent)
    axes[0].set_title("input", fontsize="small")
    axes[1].imshow(rgb, extent=extent)
    axes[1].imshow(
        shown, extent=lextent, cmap=ListedColormap(table), vmin=-0.5, vmax=len(classes) - 0.5,
        alpha=0.6, interpolation="nearest",
    )  # fmt: skip
    axes[1].set_title("class map over the input", fontsize="small")
    for ax in axes:
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
        ax.set_axis_off()
    present = sorted({int(v) for v in np.unique(labels) if v < len(classes)})
    handles = [Patch(color=table[i], label=classes[i]) for i in present]
    fig.legend(handles=handles, loc="lower center", ncol=max(1, len(handles)), fontsize="small")
    fig.suptitle(Path(image).name, fontsize="small")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(out, dpi=90)
    figures.close(fig)
    return out
