"""Road graphs and class maps with known answers, and the single-band rasters that hold them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import shapely

from tests.factories.rasters import write_tif

GRAPH_ORIGIN = (500_000.0, 5_300_000.0)  # UTM 33N, metres


def write_raster(path: Path, data: np.ndarray, res: float = 1.0, **profile: Any) -> Path:
    """A single-band tiled GeoTIFF in EPSG:32633 with ``res`` metre pixels at ``GRAPH_ORIGIN``."""
    return write_tif(
        path, data, res=res, origin=GRAPH_ORIGIN, tiled=True, blockxsize=256, blockysize=256, **profile
    )


def to_world(line: shapely.LineString, res: float = 1.0) -> shapely.LineString:
    """Pixel-space (x = column, y = row) geometry to EPSG:32633."""
    return shapely.affinity.affine_transform(line, [res, 0, 0, -res, GRAPH_ORIGIN[0], GRAPH_ORIGIN[1]])


# A known road graph in pixel coordinates: a crossing, two T junctions, a bend and dead ends,
# all inside a 600 x 600 raster; roads 6 px wide.
KNOWN_NODES = {
    "w": (60, 120),
    "t1": (300, 120),
    "e": (540, 130),  # west-east road with a T at t1
    "x": (300, 330),  # crossing of the north-south road t1-s with the road w2-e2
    "s": (300, 540),
    "w2": (80, 330),
    "e2": (520, 330),
    "t2": (180, 330),
    "n2": (140, 470),  # a bent branch from t2 to the south-west
}
KNOWN_EDGES = [
    ("w", "t1", None), ("t1", "e", None), ("t1", "x", None), ("x", "s", None),
    ("w2", "t2", None), ("t2", "x", None), ("x", "e2", None), ("t2", "n2", [(190, 420)]),
]  # fmt: skip


def known_graph() -> tuple[nx.MultiGraph, list[shapely.LineString]]:
    """The known graph (metric, world coordinates) and its centrelines in pixel coordinates."""
    g = nx.MultiGraph()
    pixel_lines = []
    for name, (x, y) in KNOWN_NODES.items():
        p = to_world(shapely.Point(x, y))
        g.add_node(name, x=p.x, y=p.y)
    for u, v, via in KNOWN_EDGES:
        line = shapely.LineString([KNOWN_NODES[u], *(via or []), KNOWN_NODES[v]])
        pixel_lines.append(line)
        world = to_world(line)
        g.add_edge(u, v, geometry=world, length=world.length)
    return g, pixel_lines


CLASS_NAMES = ["water", "trees", "grass", "road"]


def class_map(nodata: int | None = 255) -> np.ndarray:
    """A 120 x 160 class map: grass, a lake, a pond, a diagonal road, a ring of trees, nodata."""
    yy, xx = np.mgrid[0:120, 0:160]
    cmap = np.full((120, 160), 2, dtype=np.uint8)
    cmap[(yy - 30) ** 2 + (xx - 120) ** 2 < 20**2] = 0  # lake
    ring = ((yy - 85) ** 2 + (xx - 40) ** 2 < 30**2) & ((yy - 85) ** 2 + (xx - 40) ** 2 >= 15**2)
    cmap[ring] = 1  # a ring of trees with grass inside (a polygon with a hole)
    cmap[np.abs(yy - xx * 0.6) < 2] = 3  # a diagonal road between them
    cmap[110:112, 150:152] = 0  # a 4-pixel pond
    if nodata is not None:
        cmap[:6, :] = nodata  # a no-data strip
    return cmap
