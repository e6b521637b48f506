"""Vector world of a synthetic road scene: roads, fields, lakes, forests, buildings and trees.

Generated once from the seed over the full extent of a scene, in a UTM CRS (metres), with
feature counts proportional to area: a perturbed grid of gently curving main roads, curvy local
roads branching off them (T-junctions and crossings), Voronoi fields (grass, green crop, dry
grass, bare soil), lakes, forest blobs, buildings with shadows set back along roads, and street
trees whose crowns overhang the roads. :class:`satcnn.data.synth.RoadScene` rasterises it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import shapely

__all__ = ["COLOURS", "Cover", "Layer", "WorldGenerator", "chunks"]

log = logging.getLogger(__name__)

_SUN = np.array([-0.6, 0.8])  # direction shadows fall in (north-west, y points north)


class Cover(IntEnum):
    """Land cover of a rendered pixel (what is visible from above, not the mask)."""

    NONE = 0
    GRASS = 1
    CROP = 2
    DRY = 3
    SOIL = 4
    WATER = 5
    ROAD = 6
    ROOF = 7
    SHADOW = 8
    TREE = 9


# Mean digital numbers (R, G, B, NIR), NAIP-like: vegetation bright in NIR and dark in red,
# water dark (darkest in NIR), asphalt grey with NIR about equal to red.
COLOURS: dict[Cover, tuple[float, float, float, float]] = {
    Cover.NONE: (90, 100, 80, 150),
    Cover.GRASS: (85, 110, 72, 175),
    Cover.CROP: (62, 98, 58, 205),
    Cover.DRY: (158, 146, 108, 140),
    Cover.SOIL: (140, 114, 90, 118),
    Cover.WATER: (38, 54, 66, 16),
    Cover.ROAD: (108, 108, 112, 100),
    Cover.ROOF: (190, 180, 175, 170),
    Cover.SHADOW: (34, 38, 46, 38),
    Cover.TREE: (44, 70, 46, 165),
}


@dataclass
class Layer:
    """Geometries of one paint layer with per-feature attributes."""

    geoms: np.ndarray  # shapely geometries (object array)
    cover: Cover
    colours: np.ndarray  # (n, 4) float32
    theta: np.ndarray | None = None  # row direction (radians), for striped fields
    wavelength: np.ndarray | None = None  # row spacing in metres
    amp: np.ndarray | None = None  # relative amplitude of the rows


def _jitter(rng: np.random.Generator, cover: Cover, n: int, spread: float = 0.1) -> np.ndarray:
    base = np.asarray(COLOURS[cover], dtype=np.float32)
    scale = 1.0 + rng.normal(0.0, spread, size=(n, 1)).astype(np.float32)  # brightness
    tint = 1.0 + rng.normal(0.0, spread / 3, size=(n, 4)).astype(np.float32)  # hue
    return np.clip(base * scale * tint, 1, 254)


def _blob(rng: np.random.Generator, centre: np.ndarray, radius: float, n: int = 24) -> shapely.Polygon:
    """A smooth irregular polygon (lake, forest) around ``centre``."""
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    harmonics = sum(
        rng.normal(0, 0.18 / k) * np.cos(k * angles + rng.uniform(0, 2 * np.pi)) for k in range(1, 5)
    )
    r = radius * np.clip(1.0 + harmonics, 0.4, 1.8)
    return shapely.Polygon(np.c_[centre[0] + r * np.cos(angles), centre[1] + r * np.sin(angles)])


def _wander(
    rng: np.random.Generator, start: np.ndarray, heading: float, length: float, step: float, turn_sd: float
) -> np.ndarray:
    """Polyline from ``start``: heading random walk pulled back towards the initial heading."""
    n = max(2, int(length / step) + 1)
    h = np.empty(n - 1)
    cur = heading
    for i in range(n - 1):
        cur += rng.normal(0, turn_sd) + 0.15 * (heading - cur)
        h[i] = cur
    steps = np.c_[np.cos(h), np.sin(h)] * step
    return np.vstack([start, start + np.cumsum(steps, axis=0)])


def chunks(points: np.ndarray, size: int = 12) -> list[np.ndarray]:
    """Split a long polyline into overlapping pieces so the STRtree can prune windows."""
    return [points[i : i + size + 1] for i in range(0, len(points) - 1, size)]


def _road_colours(rng: np.random.Generator, n: int) -> np.ndarray:
    """Asphalt (most), concrete and gravel road surfaces, one colour per road line."""
    kind = rng.choice(3, size=n, p=[0.75, 0.15, 0.10])
    base = np.array([COLOURS[Cover.ROAD], (150, 148, 146, 138), (152, 140, 122, 132)], dtype=np.float32)
    scale = 1.0 + rng.normal(0, 0.07, size=(n, 1)).astype(np.float32)
    return np.clip(base[kind] * scale, 1, 254)


def _roof_colours(rng: np.random.Generator, n: int) -> np.ndarray:
    """Bright grey, red-brown tile and dark roofs; NIR close to red (no vegetation)."""
    kind = rng.choice(3, size=n, p=[0.5, 0.35, 0.15])
    base = np.array([COLOURS[Cover.ROOF], (175, 100, 80, 150), (95, 92, 96, 90)], dtype=np.float32)
    scale = 1.0 + rng.normal(0, 0.08, size=(n, 1)).astype(np.float32)
    return np.clip(base[kind] * scale, 1, 254)


def _sample_along(
    rng: np.random.Generator, line: np.ndarray, spacing: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Points every ``spacing`` metres (random within the range) along ``line`` and unit tangents."""
    seg = np.diff(line, axis=0)
    seg_len = np.hypot(seg[:, 0], seg[:, 1])
    cum = np.r_[0.0, np.cumsum(seg_len)]
    step = rng.uniform(*spacing)
    s = np.arange(rng.uniform(0, step), cum[-1], step)
    k = np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(seg) - 1)
    t = (s - cum[k]) / np.maximum(seg_len[k], 1e-9)
    points = line[k] + seg[k] * t[:, None]
    tangents = seg[k] / np.maximum(seg_len[k], 1e-9)[:, None]
    return points, tangents


class WorldGenerator:
    """Builds the layers of one scene inside ``[xmin, xmin + extent] x [ymin, ymin + extent]``."""

    def __init__(self, rng: np.random.Generator, xmin: float, ymin: float, extent: float) -> None:
        self.rng = rng
        self.xmin, self.ymin, self.extent = xmin, ymin, extent
        self.origin = np.array([xmin, ymin])
        self.area_km2 = (extent / 1000.0) ** 2
        self.frame = shapely.box(xmin, ymin, xmin + extent, ymin + extent)
        self.towns = self._points(self._count(0.2, minimum=1))
        self.town_r = rng.uniform(400, 1200, size=len(self.towns))
        self.centrelines: tuple[list[np.ndarray], np.ndarray] = ([], np.zeros(0))

    def _count(self, per_km2: float, minimum: int = 0) -> int:
        return max(minimum, int(self.rng.poisson(per_km2 * self.area_km2)))

    def _points(self, n: int, margin: float = 0.0) -> np.ndarray:
        lo = np.array([self.xmin - margin, self.ymin - margin])
        return lo + self.rng.uniform(0, self.extent + 2 * margin, size=(n, 2))

    def urban(self, p: np.ndarray) -> np.ndarray:
        """Settlement density in [0.15, 1]: high near town centres."""
        d2 = ((p[:, None, :] - self.towns[None, :, :]) ** 2).sum(-1)
        return 0.15 + 0.85 * np.exp(-d2 / (2 * self.town_r**2)).max(axis=1)

    def build(self) -> tuple[list[Layer], np.ndarray]:
        """All paint layers in order, and the road polygons (the mask)."""
        rng = self.rng
        main_lines, main_widths = self._main_roads()
        main_polys = _buffer_lines(main_lines, main_widths)
        lakes = self._lakes(shapely.STRtree(main_polys))
        local_lines, local_widths = self._local_roads(main_lines, lakes)
        lines = main_lines + local_lines
        widths = np.r_[main_widths, local_widths]
        self.centrelines = (lines, widths)  # the true road centrelines (synth.write_centrelines)
        road_polys = _buffer_lines(lines, widths)
        road_colours = np.repeat(
            _road_colours(rng, len(lines)), [len(chunks(line)) for line in lines], axis=0
        )
        road_tree = shapely.STRtree(road_polys)
        fields = self._fields()
        buildings, building_shadows = self._buildings(lines, widths, road_tree, lakes)
        forests = self._forests(road_polys, road_tree, lakes)
        crowns, crown_shadows = self._trees(lines, widths, buildings, lakes)
        layers = [
            *fields,
            Layer(lakes, Cover.WATER, _jitter(rng, Cover.WATER, len(lakes), 0.08)),
            Layer(road_polys, Cover.ROAD, road_colours),
            Layer(building_shadows, Cover.SHADOW, _jitter(rng, Cover.SHADOW, len(building_shadows), 0.05)),
            Layer(buildings, Cover.ROOF, _roof_colours(rng, len(buildings))),
            Layer(crown_shadows, Cover.SHADOW, _jitter(rng, Cover.SHADOW, len(crown_shadows), 0.05)),
            Layer(forests, Cover.TREE, _jitter(rng, Cover.TREE, len(forests), 0.08)),
            Layer(crowns, Cover.TREE, _jitter(rng, Cover.TREE, len(crowns), 0.12)),
        ]
        return layers, road_polys

    def _main_roads(self) -> tuple[list[np.ndarray], np.ndarray]:
        """A perturbed grid of long, gently curving roads crossing the scene (intersections)."""
        rng = self.rng
        spacing = min(rng.uniform(250, 450), 0.7 * self.extent)
        lines: list[np.ndarray] = []
        for axis in (0, 1):  # 0: west-east roads, 1: south-north roads
            offset = rng.uniform(0.2, 0.8) * spacing
            first = True
            while offset < self.extent:
                if first or rng.random() < 0.85:
                    along = -60.0
                    across = offset + rng.normal(0, spacing * 0.05)
                    start = np.array([along, across]) if axis == 0 else np.array([across, along])
                    heading = rng.normal(0, 0.06) + axis * np.pi / 2
                    line = _wander(rng, start, heading, self.extent + 120, 20.0, 0.03)
                    lines.append(line + self.origin)
                    first = False
                offset += spacing * rng.uniform(0.8, 1.2)
        return lines, rng.uniform(7, 13, size=len(lines))

    def _lakes(self, main_tree: shapely.STRtree) -> np.ndarray:
        """Smooth lakes placed in the gaps between main roads; at least one per scene."""
        rng = self.rng
        wanted = self._count(0.4, minimum=1)
        lakes: list[shapely.Polygon] = []
        best: tuple[float, np.ndarray] = (-1.0, np.zeros(2))
        geoms = main_tree.geometries
        for centre in self._points(wanted * 6):
            if len(lakes) == wanted:
                break
            point = shapely.Point(centre)
            nearest = main_tree.query_nearest(point)
            room = float(shapely.distance(point, geoms[nearest[0]])) if len(nearest) else self.extent
            room = min(room, *(centre - self.origin), *(self.origin + self.extent - centre))
            if room > best[0]:
                best = (room, centre)
            radius = min(rng.uniform(25, 150), (room - 12) / 1.5)
            if radius >= 12 and not any(lake.distance(point) < radius * 2 for lake in lakes):
                lakes.append(_blob(rng, centre, radius))
        if not lakes:
            lakes.append(_blob(rng, best[1], max(6.0, (best[0] - 8) / 1.5)))
        return np.array(lakes, dtype=object)

    def _local_roads(
        self, main_lines: list[np.ndarray], lakes: np.ndarray
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """Curvy streets branching off main roads (and off each other), denser in towns."""
        rng = self.rng
        lake_tree = shapely.STRtree(lakes)
        lines: list[np.ndarray] = []
        parents = list(main_lines)
        for generation in range(2):
            candidates = self._count(40.0 if generation == 0 else 20.0)
            new: list[np.ndarray] = []
            for _ in range(candidates):
                parent = parents[rng.integers(len(parents))]
                k = rng.integers(len(parent) - 1)
                a, b = parent[k], parent[k + 1]
                start = a + (b - a) * rng.uniform()
                if not self._inside(start) or rng.random() > self.urban(start[None])[0]:
                    continue
                side = rng.choice([-1.0, 1.0])
                heading = np.arctan2(b[1] - a[1], b[0] - a[0]) + side * np.pi / 2 + rng.normal(0, 0.15)
                line = _wander(rng, start, heading, rng.uniform(80, 450), 8.0, 0.09)
                if len(lake_tree.query(shapely.LineString(line), predicate="intersects")):
                    continue
                new.append(line)
            lines += new
            parents = new or parents
        return lines, rng.uniform(4, 7, size=len(lines))

    def _inside(self, p: np.ndarray) -> bool:
        return bool(
            self.xmin <= p[0] <= self.xmin + self.extent and self.ymin <= p[1] <= self.ymin + self.extent
        )

    def _fields(self) -> list[Layer]:
        """Voronoi parcels covering the scene: grass, striped crops, dry grass and bare soil."""
        rng = self.rng
        seeds = self._points(self._count(60.0, minimum=6), margin=100)
        cells = shapely.get_parts(
            shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=self.frame.buffer(200))
        )
        centres = shapely.get_coordinates(shapely.centroid(cells))
        u = self.urban(centres)
        kinds = np.where(
            rng.random(len(cells)) < u,
            Cover.GRASS,
            rng.choice(
                [Cover.GRASS, Cover.CROP, Cover.DRY, Cover.SOIL], size=len(cells), p=[0.3, 0.3, 0.2, 0.2]
            ),
        )
        rows = {
            Cover.GRASS: (0.0, 0.02),
            Cover.CROP: (0.06, 0.14),
            Cover.DRY: (0.03, 0.08),
            Cover.SOIL: (0.02, 0.06),
        }
        layers = []
        for cover, (lo, hi) in rows.items():
            sel = cells[kinds == cover]
            n = len(sel)
            layers.append(
                Layer(
                    sel,
                    cover,
                    _jitter(rng, cover, n, 0.08),
                    theta=rng.uniform(0, np.pi, n),
                    wavelength=rng.uniform(3, 9, n),
                    amp=rng.uniform(lo, hi, n),
                )
            )
        return layers

    def _buildings(
        self, lines: list[np.ndarray], widths: np.ndarray, road_tree: shapely.STRtree, lakes: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rectangular buildings set back along roads (dense in towns) and their shadows."""
        rng = self.rng
        corners_all, offsets = [], []
        for line, width in zip(lines, widths, strict=True):
            points, tangents = _sample_along(rng, line, (14, 26))
            for side in (-1.0, 1.0):
                keep = rng.random(len(points)) < 0.85 * self.urban(points) - 0.1
                p, t = points[keep], tangents[keep]
                n = np.c_[-t[:, 1], t[:, 0]] * side
                along = rng.uniform(4, 9, size=(len(p), 1))
                depth = rng.uniform(4, 7, size=(len(p), 1))
                centre = p + n * (width / 2 + rng.uniform(3, 8, size=(len(p), 1)) + depth)
                corners = np.stack(
                    [
                        centre + sa * t * along + sd * n * depth
                        for sa, sd in ((-1, -1), (1, -1), (1, 1), (-1, 1))
                    ],
                    axis=1,
                )
                corners_all.append(corners)
                offsets.append(_SUN * rng.uniform(3, 9, size=(len(p), 1)))
        if not corners_all or sum(len(c) for c in corners_all) == 0:
            empty = np.array([], dtype=object)
            return empty, empty
        corners = np.concatenate(corners_all)
        offset = np.concatenate(offsets)
        buildings = shapely.polygons(corners)
        bad = set(road_tree.query(buildings, predicate="intersects")[0].tolist())
        bad |= set(shapely.STRtree(lakes).query(buildings, predicate="intersects")[0].tolist())
        pairs = shapely.STRtree(buildings).query(buildings, predicate="intersects")
        bad |= set(pairs[1][pairs[0] < pairs[1]].tolist())
        keep = np.array([i not in bad for i in range(len(buildings))], dtype=bool)
        shadows = shapely.convex_hull(
            shapely.multipoints(
                np.concatenate([corners[keep], corners[keep] + offset[keep][:, None, :]], axis=1)
            )
        )
        return buildings[keep], shadows

    def _forests(self, road_polys: np.ndarray, road_tree: shapely.STRtree, lakes: np.ndarray) -> np.ndarray:
        """Woodland blobs, mostly rural; roads cut through them but crowns overhang the edges."""
        rng = self.rng
        forests = []
        water = shapely.union_all(lakes)
        for centre in self._points(self._count(1.2, minimum=1)):
            if rng.random() < self.urban(centre[None])[0] - 0.15:
                continue
            blob = _blob(rng, centre, rng.uniform(30, 180))
            near = road_tree.query(blob)
            if len(near):
                overhang = rng.uniform(0.5, 2.5)
                cut = shapely.union_all(shapely.buffer(road_polys[near], -overhang, quad_segs=2))
                blob = blob.difference(cut)
            blob = blob.difference(water)
            if not blob.is_empty:
                forests.append(blob)
        return np.array(forests, dtype=object)

    def _trees(
        self, lines: list[np.ndarray], widths: np.ndarray, buildings: np.ndarray, lakes: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Street trees whose crowns overhang the road edge, scattered trees, and their shadows."""
        rng = self.rng
        centres, radii = [], []
        for line, width in zip(lines, widths, strict=True):
            density = rng.uniform(0, 1) ** 2  # most roads few trees, some avenues
            points, tangents = _sample_along(rng, line, (8, 16))
            for side in (-1.0, 1.0):
                keep = rng.random(len(points)) < density
                p, t = points[keep], tangents[keep]
                n = np.c_[-t[:, 1], t[:, 0]] * side
                centres.append(p + n * (width / 2 + rng.uniform(-0.5, 3.0, size=(len(p), 1))))
                radii.append(rng.uniform(2.5, 5.5, size=len(p)))
        scattered = self._points(self._count(200.0))
        centres.append(scattered)
        radii.append(rng.uniform(2.0, 6.0, size=len(scattered)))
        c = np.concatenate(centres)
        r = np.concatenate(radii)
        crowns = shapely.buffer(shapely.points(c), r, quad_segs=4)
        bad = (
            set(shapely.STRtree(buildings).query(crowns, predicate="intersects")[0].tolist())
            if len(buildings)
            else set()
        )
        bad |= set(shapely.STRtree(lakes).query(crowns, predicate="intersects")[0].tolist())
        keep = np.array([i not in bad for i in range(len(crowns))], dtype=bool)
        shadows = shapely.buffer(shapely.points(c[keep] + _SUN * r[keep, None] * 0.8), r[keep], quad_segs=4)
        return crowns[keep], shadows


def _buffer_lines(lines: list[np.ndarray], widths: np.ndarray) -> np.ndarray:
    """Road polygons: each line split into chunks, buffered by half its width."""
    geoms, half = [], []
    for line, width in zip(lines, widths, strict=True):
        for chunk in chunks(line):
            geoms.append(shapely.LineString(chunk))
            half.append(width / 2)
    return shapely.buffer(np.array(geoms, dtype=object), np.array(half), quad_segs=4)
