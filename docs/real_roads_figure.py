"""Make docs/img/real_roads_massachusetts.png from the outputs of ``make real-roads``.

One held-out Massachusetts Roads tile (the valid-split tile the model never saw with the most road):
its image, its truth, and the predicted mask over the truth (yellow: found, red: missed, cyan:
false alarm), with that tile's scores.

.venv/bin/python docs/real_roads_figure.py [--tile NAME]
"""

from __future__ import annotations

import argparse
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


def _read(path: Path) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no CRS: the tiles are not georeferenced
        with rasterio.open(path) as src:
            return src.read()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tile", help="held-out tile name (default: the one with the most road)")
    args = parser.parse_args()
    report = json.loads((REAL / "massachusetts" / "evaluate" / "metrics.json").read_text())
    rows = {Path(r["truth"]).stem: r for r in report["per_tile"]}
    name = args.tile or max(rows, key=lambda n: rows[n].get("road_pixels", 0))
    row = rows[name]
    image = _read(REAL / "scenes" / "images" / f"{name}.tif")
    truth = _read(REAL / "scenes" / "masks" / f"{name}.tif")[0] > 0
    pred = _read(REAL / "massachusetts" / "infer" / f"{name}_mask.tif")[0] == 1
    overlay = np.zeros((*truth.shape, 3))
    overlay[truth & pred] = (1.0, 0.9, 0.0)
    overlay[truth & ~pred] = (1.0, 0.1, 0.1)
    overlay[~truth & pred] = (0.0, 0.9, 0.9)
    fig, axes = plt.subplots(1, 3, figsize=(15, 5.6))
    panels = [
        (f"held-out tile {name} (1500 px at 1 m)", np.moveaxis(image, 0, -1)),
        ("truth", truth),
        ("prediction vs truth", overlay),
    ]
    for ax, (title, data) in zip(axes, panels, strict=True):
        ax.imshow(data, cmap="gray" if data.ndim == 2 else None, interpolation="nearest")
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
    scores = f"IoU {row['iou']:.2f}, F1 {row['f1']:.2f}, relaxed breakeven {row['breakeven']:.2f}"
    if "apls" in row:
        scores += f", APLS {row['apls']:.2f}"
    fig.suptitle(f"Tile {name}, never seen in training: {scores}")
    fig.tight_layout()
    out = ROOT / "docs" / "img" / "real_roads_massachusetts.png"
    fig.savefig(out, dpi=60)
    sys.stdout.write(f"wrote {out}\n")


if __name__ == "__main__":
    main()
