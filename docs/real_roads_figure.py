"""Make docs/img/real_roads_massachusetts.png from the outputs of ``make real-roads``.

The whole Massachusetts tile with its train / validation / held-out column bands, then the held-out
band (its imagery: the rows above the white no-data area): image, truth, and the overlay of the
predicted mask on the truth (yellow: found, red: missed, cyan: false alarm).

.venv/bin/python docs/real_roads_figure.py
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import rasterio

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / "outputs" / "real-roads"
STEM = "train_10078660_15"


def _read(path: Path) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no CRS: the PNG pair is not georeferenced
        with rasterio.open(path) as src:
            return src.read()


def main() -> None:
    tile = _read(REAL / "massachusetts-tile" / "images" / f"{STEM}.tif")
    scenes = REAL / "massachusetts-scenes"
    widths = [_read(scenes / "images" / f"{STEM}_{p}.tif").shape[2] for p in ("train", "val", "test")]
    image = _read(scenes / "images" / f"{STEM}_test.tif")
    truth = _read(scenes / "masks" / f"{STEM}_test.tif")[0] > 0
    pred = _read(REAL / "massachusetts" / "infer" / f"{STEM}_test_mask.tif")[0] == 1
    metrics = json.loads((REAL / "massachusetts" / "evaluate" / "metrics.json").read_text())["metrics"]
    rows = int(np.flatnonzero((image < 255).any(axis=(0, 2)))[-1]) + 1  # down to the white area
    fig, axes = plt.subplots(1, 4, figsize=(13, 5.2), gridspec_kw={"width_ratios": [3.2, 1, 1, 1]})
    axes[0].imshow(np.moveaxis(tile, 0, -1))
    edges = np.cumsum([0, *widths])
    for (name, colour), x0, x1 in zip(
        [("train", "white"), ("val", "orange"), ("held out", "red")], edges[:-1], edges[1:], strict=True
    ):
        axes[0].axvline(x1 - 0.5, color=colour, lw=1.5)
        axes[0].text((x0 + x1) / 2, 40, name, color=colour, ha="center", fontsize=10, weight="bold")
    axes[0].set_title("Massachusetts Roads tile, 1024 px at 1.46 m")
    overlay = np.zeros((*truth.shape, 3))
    overlay[truth & pred] = (1.0, 0.9, 0.0)
    overlay[truth & ~pred] = (1.0, 0.1, 0.1)
    overlay[~truth & pred] = (0.0, 0.9, 0.9)
    panels = [
        ("held-out band", np.moveaxis(image, 0, -1)[:rows]),
        ("truth", truth[:rows]),
        ("prediction vs truth", overlay[:rows]),
    ]
    for ax, (title, data) in zip(axes[1:], panels, strict=True):
        ax.imshow(data, cmap="gray" if data.ndim == 2 else None, interpolation="nearest")
        ax.set_title(title)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(
        f"Held out: IoU {metrics['iou']:.2f}, F1 {metrics['f1']:.2f}, relaxed precision "
        f"{metrics['relaxed_precision']:.2f} / recall {metrics['relaxed_recall']:.2f} (rho = 3 px), "
        f"breakeven {metrics['breakeven']:.2f}; {int(metrics['road_pixels']):,} road pixels"
    )
    fig.tight_layout()
    out = ROOT / "docs" / "img" / "real_roads_massachusetts.png"
    fig.savefig(out, dpi=80)
    sys.stdout.write(f"wrote {out}\n")


if __name__ == "__main__":
    main()
