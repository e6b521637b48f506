"""Make docs/img/road_network_spacenet.png: a real SpaceNet tile, its road mask, the extracted network.

.venv/bin/python docs/road_network_figure.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import rasterio

from satcnn.vector.apls import apls
from satcnn.vector.layers import read_vector
from satcnn.vector.lines import graph_from_lines, metric_crs
from satcnn.vector.roads import extract_road_graph

ROOT = Path(__file__).resolve().parents[1]
TILE = ROOT / "data/samples/roads/spacenet3-vegas"


def main() -> None:
    with rasterio.open(TILE / "road_mask_input.tif") as src:
        image = src.read(1).astype(np.float32)
        bounds = src.bounds
    with rasterio.open(TILE / "sample_road_raster_mask.tif") as src:
        mask = src.read(1)
    lo, hi = np.percentile(image, (1, 99))
    image = np.clip((image - lo) / (hi - lo), 0, 1)
    net = extract_road_graph(TILE / "sample_road_raster_mask.tif")
    lines, nodes = net.frames()
    truth = read_vector(TILE / "sample_roads_for_masking.geojson")
    crs = metric_crs(truth)
    score = apls(graph_from_lines(truth, crs), graph_from_lines(lines, crs))

    extent = (bounds.left, bounds.right, bounds.bottom, bounds.top)
    fig, axes = plt.subplots(1, 3, figsize=(15, 5.4), constrained_layout=True)
    axes[0].imshow(image, cmap="gray", extent=extent)
    axes[0].set_title("SpaceNet 3 Las Vegas tile (WorldView-3 pan, 0.3 m)")
    axes[1].imshow(mask > 0, cmap="gray", extent=extent)
    axes[1].set_title("its road mask (the input to vectorize)")
    axes[2].imshow(image, cmap="gray", extent=extent, alpha=0.6)
    truth.plot(ax=axes[2], color="white", linewidth=5, alpha=0.8)
    lines.plot(ax=axes[2], color="tab:red", linewidth=1.8)
    for degree, colour in ((1, "tab:orange"), (3, "tab:blue"), (4, "tab:purple")):
        sel = nodes[nodes["degree"] == degree]
        if len(sel):
            sel.plot(ax=axes[2], color=colour, markersize=40, zorder=3, label=f"degree {degree}")
    axes[2].legend(loc="lower right", fontsize=8)
    axes[2].set_title(
        f"extracted network (red) over the true centrelines (white)\n"
        f"{len(nodes)} nodes, {len(lines)} edges, APLS {score.apls:.3f}"
    )
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.set_xlim(bounds.left, bounds.right)
        ax.set_ylim(bounds.bottom, bounds.top)
    out = ROOT / "docs" / "img" / "road_network_spacenet.png"
    fig.savefig(out, dpi=80)
    print(f"wrote {out} (APLS {score.apls:.4f})")  # noqa: T201 (a script)


if __name__ == "__main__":
    main()
