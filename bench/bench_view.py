"""``satcnn view``: time to render one Web Mercator tile from a 4096 x 4096 output COG.

Writes a ``prob_uint8`` probability COG (with its tags and overviews, as ``satcnn infer`` writes
it), a mask COG and a 4-band uint8 input COG, 4096 x 4096 at 0.5 m in UTM, then renders tiles
(``satcnn.view.tiles.render_tile``, the function behind ``/tiles/...png``) at three zooms: the
native resolution (full-resolution reads), two levels out (an overview), and the whole raster in
one tile. Reports the median milliseconds per tile, after one untimed tile per zoom (the first
read in a process sets up GDAL and PROJ, and the input's stretch is computed once per file); the
goal is < 150 ms on the 2-core machine.

Usage::

    .venv/bin/python bench/bench_view.py [--size 4096] [--tiles 20] [--out-dir bench/results]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import morecantile
import numpy as np
import rasterio
from rasterio.transform import from_origin
from rasterio.warp import transform_bounds
from results_io import RESULTS, row, write_json

from satcnn.io.output_tags import OutputTags
from satcnn.view.tiles import RenderedLayer, render_tile

GOAL_MS = 150.0
RES = 0.5  # metres
ORIGIN = (500_000.0, 4_600_000.0)


def write_cog(path: Path, data: np.ndarray, tags: OutputTags | None, nodata: int | None) -> Path:
    """A COG (GDAL's COG driver: internal tiles, overviews) in UTM 33N, tagged like satcnn's."""
    profile = {
        "driver": "COG",
        "count": data.shape[0],
        "height": data.shape[1],
        "width": data.shape[2],
        "dtype": "uint8",
        "crs": "EPSG:32633",
        "transform": from_origin(*ORIGIN, RES, RES),
        "nodata": nodata,
        "compress": "deflate",
        "blocksize": 512,
        "overview_resampling": "average",
    }
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data)
        if tags is not None:
            ds.update_tags(**tags.to_tags())
    return path


def smooth_field(size: int, seed: int = 0) -> np.ndarray:
    """A smooth random field in [0, 1] (coarse noise upsampled), like a probability map."""
    coarse = np.random.default_rng(seed).random((size // 64, size // 64))
    return np.kron(coarse, np.ones((64, 64)))[:size, :size]


def time_tiles(layer: RenderedLayer, path: Path, zoom: int, count: int) -> float:
    """Median ms per tile over up to ``count`` distinct tiles of ``zoom`` inside the raster."""
    with rasterio.open(path) as ds:
        w, s, e, n = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds)
    tms = morecantile.tms.get("WebMercatorQuad")
    tiles = list(tms.tiles(w, s, e, n, [zoom]))
    step = max(1, len(tiles) // count)
    chosen = tiles[len(tiles) // 4 :: step][:count] or tiles[:count]
    render_tile(layer, chosen[0].z, chosen[0].x, chosen[0].y)  # warm: GDAL/PROJ set-up, stretch statistics
    times = []
    for t in chosen:
        start = time.perf_counter()
        png = render_tile(layer, t.z, t.x, t.y)
        times.append((time.perf_counter() - start) * 1000)
        assert png[:4] == b"\x89PNG"
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--tiles", type=int, default=20)
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    size = args.size
    with tempfile.TemporaryDirectory() as tmp:
        p = smooth_field(size)
        prob = write_cog(
            Path(tmp) / "prob.tif", np.rint(p * 254).astype("uint8")[None], OutputTags("prob_uint8"), 255
        )
        mask = write_cog(Path(tmp) / "mask.tif", (p >= 0.5).astype("uint8")[None], OutputTags("mask"), 255)
        bands = np.stack([np.rint(smooth_field(size, seed) * 200).astype("uint8") for seed in range(4)])
        image = write_cog(Path(tmp) / "image.tif", bands, None, None)
        # native: 0.5 m at 46 N is zoom 18 (0.42 m tile pixels); 16 reads an overview; 12 the whole raster
        layers = [(RenderedLayer(prob, "prob"), prob), (RenderedLayer(mask, "mask"), mask)]
        layers.append((RenderedLayer(image, "rgb"), image))
        rows = []
        for layer, path in layers:
            for zoom, what in ((18, "native"), (16, "overview"), (12, "whole raster")):
                ms = time_tiles(layer, path, zoom, args.tiles)
                what_ = f"view tile {layer.kind} z{zoom} ({what}), {size} px COG"
                rows.append(row(what_, ms, "ms", f"goal {GOAL_MS:.0f} ms", ms / GOAL_MS))
                print(f"{layer.kind:5s} z{zoom} {what:13s}: {ms:7.1f} ms per tile (goal < {GOAL_MS:.0f})")
    load = os.getloadavg()
    print(f"load average (1, 5, 15 min): {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    write_json("view", rows, {**vars(args), "load_avg_1_5_15": [round(v, 1) for v in load]}, args.out_dir)


if __name__ == "__main__":
    main()
