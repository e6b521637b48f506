"""``vectorize_roads``: a road probability or mask raster in, a routable road network out.

Pipeline: threshold -> skeleton -> graph -> cleaning, streamed block by block
(:mod:`satcnn.vector.blocks`), merged across seams (:class:`~satcnn.vector.graph.PixelGraphBuilder`)
and cleaned (:mod:`satcnn.vector.clean`). The graph is built with skan: it is maintained with
scikit-image, traces skeleton paths in compiled code, and returns the exact pixel chains that the
seam merging needs; networkx holds the merged graph.

Output layers (input CRS): ``lines`` (``edge_id``, ``u``, ``v``, ``length_m``, ``bridged``) and
``nodes`` (``node_id``, ``degree``), as GeoPackage or GeoParquet (:mod:`satcnn.vector.layers`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pyproj
import rasterio
import shapely
from affine import Affine
from rasterio.crs import CRS
from tqdm.auto import tqdm

from satcnn.io.output_tags import ROAD_KINDS, VectorTags, refuse_other_kind
from satcnn.io.raster import gdal_cache_env, open_raster
from satcnn.io.road_mask import check_threshold
from satcnn.vector.blocks import iter_blocks, mask_rule, read_road_mask, skeleton_runs
from satcnn.vector.clean import CleanOptions, clean_graph
from satcnn.vector.graph import Metric, PixelGraphBuilder, edge_xy, to_pixel_space
from satcnn.vector.layers import layer_paths, write_layers

__all__ = ["RoadNetwork", "VectorizeReport", "extract_road_graph", "vectorize_roads"]

log = logging.getLogger(__name__)


@dataclass
class RoadNetwork:
    """A cleaned road graph on a raster grid.

    Attributes:
        graph: Pixel-space MultiGraph (see :mod:`satcnn.vector.graph`).
        transform: The raster's pixel-to-CRS transform.
        crs: The raster's CRS; None for a pixel grid (``allow_no_crs``: units taken as metres).
        metric: Pixel offsets to metres.
    """

    graph: nx.MultiGraph
    transform: Affine
    crs: CRS | None
    metric: Metric

    def _to_crs(self, xy: np.ndarray) -> np.ndarray:
        t = self.transform
        x, y = xy[:, 0], xy[:, 1]
        return np.column_stack([t.a * x + t.b * y + t.c, t.d * x + t.e * y + t.f])

    def frames(self) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
        """The ``lines`` and ``nodes`` GeoDataFrames, in the raster's CRS."""
        g = self.graph
        rows = []
        for i, (u, v, data) in enumerate(g.edges(data=True)):
            start = data["start"]
            end = v if u == start else u
            rows.append((i, int(start), int(end), self._to_crs(edge_xy(data, start)), bool(data["bridged"])))
        geoms = np.array([shapely.LineString(r[3]) for r in rows], dtype=object)
        lines = gpd.GeoDataFrame(
            {
                "edge_id": np.array([r[0] for r in rows], dtype=np.int64),
                "u": np.array([r[1] for r in rows], dtype=np.int64),
                "v": np.array([r[2] for r in rows], dtype=np.int64),
                "length_m": self._lengths(geoms),
                "bridged": np.array([r[4] for r in rows], dtype=bool),
            },
            geometry=gpd.GeoSeries(geoms, crs=self.crs),
        )
        ids = sorted(g.nodes)
        pts = self._to_crs(np.array([g.nodes[n]["xy"] for n in ids]).reshape(-1, 2))
        nodes = gpd.GeoDataFrame(
            {
                "node_id": np.array(ids, dtype=np.int64),
                "degree": np.array([g.degree(n) for n in ids], dtype=np.int64),
            },
            geometry=gpd.GeoSeries(shapely.points(pts) if len(ids) else [], crs=self.crs),
        )
        return lines, nodes

    def _lengths(self, geoms: np.ndarray) -> np.ndarray:
        if len(geoms) == 0:
            return np.zeros(0)
        if self.crs is None:
            return shapely.length(geoms)
        if self.crs.is_geographic:
            geod = pyproj.CRS.from_user_input(self.crs).get_geod()
            assert geod is not None
            return np.array([geod.geometry_length(g) for g in geoms])
        return shapely.length(geoms) * float(self.crs.linear_units_factor[1])


@dataclass
class VectorizeReport:
    """What :func:`vectorize_roads` did; ``georeferenced`` false: the graph is on the raster's pixel
    grid, without a CRS (``allow_no_crs``)."""

    files: list[Path]
    nodes: int
    edges: int
    length_m: float
    megapixels: float
    seconds: float
    extra: dict[str, float] = field(default_factory=dict)
    georeferenced: bool = True

    @property
    def megapixels_per_s(self) -> float:
        """Throughput."""
        return self.megapixels / self.seconds if self.seconds > 0 else float("inf")


def extract_road_graph(
    src: str | Path,
    *,
    threshold: float = 0.5,
    block: int = 2048,
    halo: int = 64,
    clean: CleanOptions | None = None,
    progress: bool = False,
    gdal_cache_mb: int = 16,
    allow_no_crs: bool = False,
) -> RoadNetwork:
    """Vectorise a road probability or mask raster into a cleaned road graph.

    Args:
        src: Single-band raster (GeoTIFF/COG): a satcnn probability (``prob_uint8`` or
            ``prob_float32``) or mask, or any 0/non-zero road mask (see
            :func:`satcnn.vector.blocks.mask_rule`).
        threshold: Road where the probability is at or above this, in [0, 1] (ignored for masks;
            the rule of :mod:`satcnn.io.road_mask`).
        block: Core block side in pixels; memory is about ``(block + 2 * halo)**2`` bytes times a
            small factor, whatever the raster size.
        halo: Pixels read around each block. Block-wise output equals whole-raster output when
            every road (connected mask blob) is narrower than about ``halo`` pixels.
        clean: Cleaning settings (defaults: :class:`~satcnn.vector.clean.CleanOptions`).
        progress: Show a progress bar over blocks.
        gdal_cache_mb: GDAL's block cache while reading: a few blocks' worth (its default, 5 %
            of RAM, would keep most of a large raster in memory).
        allow_no_crs: Accept a raster without a CRS: the graph is on its pixel grid and the
            transform's units are taken as metres.

    Returns:
        The network on the raster's grid, CRS and metric.

    Raises:
        InputFileNotFoundError: ``src`` does not exist.
        RasterError: not a readable single-band raster with a CRS.
        DataFormatError: a satcnn class map (``SATCNN_OUTPUT=class_map``).
        ConfigError: a setting is out of range.
    """
    info = open_raster(src, require_crs=not allow_no_crs)
    refuse_other_kind(info.path, ROAD_KINDS, "satcnn vectorize roads", "use `satcnn vectorize classes`")
    clean = clean or CleanOptions()
    metric = Metric.from_raster(info.transform, info.crs, info.height, info.width, allow_no_crs=allow_no_crs)
    blocks = list(iter_blocks(info.height, info.width, block, halo))
    builder = PixelGraphBuilder(info.height, info.width, block)
    with gdal_cache_env(gdal_cache_mb), rasterio.open(info.path) as ds:
        rule = mask_rule(info, ds, threshold)
        for b in tqdm(blocks, desc=info.path.name, disable=not progress, leave=False):
            road = read_road_mask(ds, b.read, rule)
            runs = skeleton_runs(road, b) if road.any() else []
            builder.add_block(b.index, runs)
    graph = clean_graph(to_pixel_space(builder.finish()), metric, clean, shape=(info.height, info.width))
    return RoadNetwork(graph, info.transform, info.crs, metric)


def vectorize_roads(
    src: str | Path,
    out: str | Path,
    *,
    threshold: float = 0.5,
    block: int = 2048,
    halo: int = 64,
    spur_m: float = 10.0,
    gap_m: float = 10.0,
    gap_angle: float = 30.0,
    simplify_m: float = 1.0,
    progress: bool = False,
    allow_no_crs: bool = False,
) -> VectorizeReport:
    """Vectorise ``src`` and write the ``lines`` and ``nodes`` layers to ``out``.

    This is the one entry point for ``satcnn vectorize roads``, ``satcnn infer --vector`` and the
    pipeline stage: call it with the probability (or mask) COG that inference wrote.

    Args:
        src: Road probability or mask raster (see :func:`extract_road_graph`).
        out: ``*.gpkg`` (one file, layers ``lines`` and ``nodes``) or ``*.parquet``
            (``<stem>_lines.parquet`` and ``<stem>_nodes.parquet``).
        threshold, block, halo, progress, allow_no_crs: As for :func:`extract_road_graph`.
        spur_m, gap_m, gap_angle, simplify_m: Cleaning (see :class:`~satcnn.vector.clean.CleanOptions`).

    Returns:
        Files written, counts, total length and throughput.

    Raises:
        InputFileNotFoundError, RasterError, ConfigError: bad input or settings, raised before
            any output is written.
    """
    layer_paths(out, ["lines", "nodes"])  # validate the name before any work
    clean = CleanOptions(spur_m=spur_m, gap_m=gap_m, gap_angle=gap_angle, simplify_m=simplify_m)
    check_threshold("threshold", threshold)
    t0 = time.perf_counter()
    net = extract_road_graph(
        src,
        threshold=threshold,
        block=block,
        halo=halo,
        clean=clean,
        progress=progress,
        allow_no_crs=allow_no_crs,
    )
    lines, nodes = net.frames()
    files = write_layers(out, {"lines": lines, "nodes": nodes}, VectorTags(threshold).to_tags())
    seconds = time.perf_counter() - t0
    with rasterio.open(src) as ds:
        megapixels = ds.width * ds.height / 1e6
    log.info("%s: %d nodes, %d edges, %.0f m of road", src, len(nodes), len(lines), lines["length_m"].sum())
    length = float(lines["length_m"].sum())
    return VectorizeReport(
        files, len(nodes), len(lines), length, megapixels, seconds, georeferenced=lines.crs is not None
    )
