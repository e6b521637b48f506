"""Synthetic 4-band (R, G, B, NIR) road scenes with exact road masks, written window by window.

A scene is vector geometry in a UTM CRS (metres), generated once from the seed over the full
extent with feature counts proportional to area: a perturbed grid of gently curving main roads,
curvy local roads branching off them (T-junctions and crossings), Voronoi fields (grass, green
crop, dry grass, bare soil), lakes, forest blobs, buildings with shadows set back along roads,
and street trees whose crowns overhang the roads. The mask is the road polygons only, so roads
hidden under canopy are road in the mask and trees in the image.

Each ``block`` window is rasterised on its own (``rasterio.features.rasterize`` with the window
transform, features picked from an STRtree), shaded with per-feature colours, world-coordinate
texture (seam-free) and white noise seeded by ``(seed, scene, window)``, and written to a tiled
GeoTIFF. Memory is bounded by the geometry (proportional to area, far below the raster) and one
window; output is byte-for-byte reproducible.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

import numpy as np
import rasterio
import shapely
from affine import Affine
from rasterio.crs import CRS
from rasterio.features import rasterize
from rasterio.windows import Window
from rasterio.windows import bounds as window_bounds
from rasterio.windows import transform as window_transform
from tqdm.auto import tqdm

from satcnn.errors import ConfigError
from satcnn.io.atomic import atomic_output

__all__ = ["BANDS", "Cover", "RoadScene", "synth_roads", "write_centrelines"]

log = logging.getLogger(__name__)

BANDS: list[str] = ["red", "green", "blue", "nir"]
_EPSG = 32633  # UTM zone 33N (central Europe); origins are drawn inside the zone's valid range
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
_COLOURS: dict[Cover, tuple[float, float, float, float]] = {
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
_NOISE_SD = np.array([3, 4, 4, 4, 5, 1.5, 3, 4, 2, 7], dtype=np.float32)  # DN, indexed by Cover
_CROWN_AMP = np.array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0.22], dtype=np.float32)  # canopy texture by Cover


@dataclass
class _Layer:
    """Geometries of one paint layer with per-feature attributes."""

    geoms: np.ndarray  # shapely geometries (object array)
    cover: Cover
    colours: np.ndarray  # (n, 4) float32
    theta: np.ndarray | None = None  # row direction (radians), for striped fields
    wavelength: np.ndarray | None = None  # row spacing in metres
    amp: np.ndarray | None = None  # relative amplitude of the rows


def _jitter(rng: np.random.Generator, cover: Cover, n: int, spread: float = 0.1) -> np.ndarray:
    base = np.asarray(_COLOURS[cover], dtype=np.float32)
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


def _plane_wave(x: np.ndarray, y: np.ndarray, k: float, angle: float, phase: float) -> np.ndarray:
    """``sin(k (x cos(angle) + y sin(angle)) + phase)`` on the (h, w) grid from a row ``x`` and column ``y``.

    Expanded as sin(a + b) = sin a cos b + cos a sin b so only 1-D sines are evaluated.
    """
    a = (k * np.cos(angle)) * x + phase
    b = (k * np.sin(angle)) * y
    return (np.sin(a) * np.cos(b) + np.cos(a) * np.sin(b)).astype(np.float32, copy=False)


def _chunks(points: np.ndarray, size: int = 12) -> list[np.ndarray]:
    """Split a long polyline into overlapping pieces so the STRtree can prune windows."""
    return [points[i : i + size + 1] for i in range(0, len(points) - 1, size)]


class RoadScene:
    """Vector description of one synthetic scene, rendered window by window.

    Build with :meth:`generate`; :meth:`render` returns image, mask and cover for any window.
    """

    centrelines: tuple[list[np.ndarray], np.ndarray] = ([], np.zeros(0))  # (lines, widths in metres)

    def __init__(
        self,
        size: int,
        resolution: float,
        transform: Affine,
        layers: list[_Layer],
        road_polys: np.ndarray,
        entropy: tuple[int, ...],
    ) -> None:
        self.size = size
        self.resolution = resolution
        self.transform = transform
        self.crs = CRS.from_epsg(_EPSG)
        self._entropy = entropy
        geoms = np.concatenate([layer.geoms for layer in layers])
        n = len(geoms)
        # Feature ids start at 1 (0 = nothing painted); their order is the paint order.
        self._cover = np.zeros(n + 1, dtype=np.uint8)
        self._colour = np.zeros((n + 1, 4), dtype=np.float32)
        self._colour[0] = _COLOURS[Cover.NONE]
        self._kx = np.zeros(n + 1, dtype=np.float32)  # wave vector of field rows (radians per metre)
        self._ky = np.zeros(n + 1, dtype=np.float32)
        self._amp = np.zeros(n + 1, dtype=np.float32)
        i = 1
        for layer in layers:
            m = len(layer.geoms)
            sl = slice(i, i + m)
            self._cover[sl] = layer.cover
            self._colour[sl] = layer.colours
            if layer.theta is not None and layer.wavelength is not None and layer.amp is not None:
                k = 2 * np.pi / layer.wavelength
                self._kx[sl] = k * np.cos(layer.theta)
                self._ky[sl] = k * np.sin(layer.theta)
                self._amp[sl] = layer.amp
            i += m
        self._geoms = geoms
        self._tree = shapely.STRtree(geoms)
        self._roads = road_polys
        self._road_tree = shapely.STRtree(road_polys)
        # Low-frequency brightness texture in world coordinates (continuous across windows).
        rng = np.random.default_rng([*entropy, 1])
        self._waves = [
            (rng.uniform(0, 2 * np.pi), 2 * np.pi / rng.uniform(40, 400), rng.uniform(0, 2 * np.pi))
            for _ in range(4)
        ]
        self._crown = [(rng.uniform(0, np.pi), rng.uniform(0, 2 * np.pi)) for _ in range(2)]
        log.debug("scene %s: %d features, %d road polygons", entropy, n, len(road_polys))

    @property
    def n_features(self) -> int:
        """Number of painted vector features (roads, fields, buildings, trees, ...)."""
        return len(self._geoms)

    @classmethod
    def generate(cls, size: int, seed: int, resolution: float | None = None, index: int = 0) -> RoadScene:
        """Generate the geometry of a ``size`` x ``size`` pixel scene from ``(seed, index)``.

        Args:
            size: width and height in pixels.
            seed: random seed; the same seed and index give the same scene.
            resolution: pixel size in metres; drawn in [0.5, 1.0] when None.
            index: scene number within a batch (mixed into the seed).
        """
        rng = np.random.default_rng([seed, index])
        if resolution is None:
            resolution = round(float(rng.uniform(0.5, 1.0)), 2)
        if not resolution > 0:
            raise ConfigError(f"resolution must be > 0 metres, got {resolution}")
        extent = size * resolution
        x0 = float(np.floor(rng.uniform(320_000, 680_000)))
        y0 = float(np.floor(rng.uniform(5_000_000, 5_600_000)))
        transform = Affine(resolution, 0.0, x0, 0.0, -resolution, y0)
        gen = _Generator(rng, x0, y0 - extent, extent)
        layers, road_polys = gen.build()
        scene = cls(size, resolution, transform, layers, road_polys, (seed, index))
        scene.centrelines = gen.centrelines
        return scene

    def render(self, window: Window, index: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rasterise one window.

        Args:
            window: pixel window of the scene grid.
            index: window number; seeds the white noise so renders are reproducible.

        Returns:
            ``image`` uint8 (4, h, w) R, G, B, NIR; ``mask`` uint8 (h, w) with 1 = road;
            ``cover`` uint8 (h, w) :class:`Cover` of the visible surface.
        """
        h, w = int(window.height), int(window.width)
        wt = window_transform(window, self.transform)
        box = shapely.box(*window_bounds(window, self.transform))
        idx = np.sort(self._tree.query(box))
        ids = rasterize(
            zip(self._geoms[idx], (idx + 1).tolist(), strict=True),
            out_shape=(h, w),
            transform=wt,
            fill=0,
            dtype="int32",
        )
        road_idx = self._road_tree.query(box)
        if len(road_idx):
            mask = rasterize(
                ((g, 1) for g in self._roads[road_idx]), out_shape=(h, w), transform=wt, fill=0, dtype="uint8"
            )
        else:
            mask = np.zeros((h, w), dtype=np.uint8)

        cover = self._cover[ids]
        # World coordinates (metres from the scene's top-left corner) of pixel centres.
        res = self.resolution
        x = ((window.col_off + np.arange(w, dtype=np.float32) + 0.5) * res)[None, :]
        y = ((window.row_off + np.arange(h, dtype=np.float32) + 0.5) * res)[:, None]
        shade = np.zeros((h, w), dtype=np.float32)
        for angle, k, phase in self._waves:
            shade += _plane_wave(x, y, k, angle, phase)
        shade *= 0.06 / len(self._waves)
        # Field rows / furrows: per-feature direction, spacing and amplitude.
        shade += self._amp[ids] * np.sin(self._kx[ids] * x + self._ky[ids] * y)
        # Canopy: crossed waves give crown-sized bright/dark blobs.
        crown_amp = _CROWN_AMP[cover]
        if crown_amp.any():
            (a1, p1), (a2, p2) = self._crown
            kc = 2 * np.pi / 5.0
            shade += crown_amp * _plane_wave(x, y, kc, a1, p1) * _plane_wave(x, y, kc, a2, p2)
        shade += 1.0
        noise_sd = _NOISE_SD[cover]
        rng = np.random.default_rng([*self._entropy, 2, index])
        image = np.empty((4, h, w), dtype=np.uint8)
        for band in range(4):  # one band at a time keeps the float temporaries small
            value = self._colour[:, band][ids]
            value *= shade
            value += rng.standard_normal((h, w), dtype=np.float32) * noise_sd
            np.clip(np.rint(value, out=value), 0, 255, out=value)
            image[band] = value
        return image, mask, cover

    def profile(self) -> dict[str, object]:
        """GeoTIFF profile of the image (4 bands); the mask uses ``count=1``."""
        return {
            "driver": "GTiff",
            "dtype": "uint8",
            "count": 4,
            "width": self.size,
            "height": self.size,
            "crs": self.crs,
            "transform": self.transform,
            "tiled": True,
            "blockxsize": 256,
            "blockysize": 256,
            "compress": "deflate",
            "predictor": 2,
            "interleave": "pixel",
            "nodata": None,
        }

    def windows(self, block: int) -> list[Window]:
        """Row-major ``block`` x ``block`` windows covering the scene (edge windows are smaller)."""
        return [
            Window(col, row, min(block, self.size - col), min(block, self.size - row))
            for row in range(0, self.size, block)
            for col in range(0, self.size, block)
        ]

    def write(self, image_path: Path, mask_path: Path, block: int = 1024, progress: bool = True) -> None:
        """Write image and mask GeoTIFFs window by window, each atomically."""
        profile = self.profile()
        mask_profile = {**profile, "count": 1, "interleave": "band"}
        windows = self.windows(block)
        with (
            atomic_output(image_path) as img_tmp,
            atomic_output(mask_path) as mask_tmp,
            rasterio.open(img_tmp, "w", **profile) as img,
            rasterio.open(mask_tmp, "w", **mask_profile) as msk,
        ):
            img.descriptions = tuple(BANDS)
            msk.descriptions = ("road",)
            img.update_tags(source="satcnn.data.synth", seed=str(self._entropy))
            for i, window in enumerate(
                tqdm(windows, desc=image_path.name, disable=not progress, leave=False)
            ):
                image, mask, _ = self.render(window, i)
                img.write(image, window=window)
                msk.write(mask[None], window=window)


def _road_colours(rng: np.random.Generator, n: int) -> np.ndarray:
    """Asphalt (most), concrete and gravel road surfaces, one colour per road line."""
    kind = rng.choice(3, size=n, p=[0.75, 0.15, 0.10])
    base = np.array([_COLOURS[Cover.ROAD], (150, 148, 146, 138), (152, 140, 122, 132)], dtype=np.float32)
    scale = 1.0 + rng.normal(0, 0.07, size=(n, 1)).astype(np.float32)
    return np.clip(base[kind] * scale, 1, 254)


def _roof_colours(rng: np.random.Generator, n: int) -> np.ndarray:
    """Bright grey, red-brown tile and dark roofs; NIR close to red (no vegetation)."""
    kind = rng.choice(3, size=n, p=[0.5, 0.35, 0.15])
    base = np.array([_COLOURS[Cover.ROOF], (175, 100, 80, 150), (95, 92, 96, 90)], dtype=np.float32)
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


class _Generator:
    """Builds the layers of one scene inside ``[xmin, xmin + extent] x [ymin, ymin + extent]``."""

    def __init__(self, rng: np.random.Generator, xmin: float, ymin: float, extent: float) -> None:
        self.rng = rng
        self.xmin, self.ymin, self.extent = xmin, ymin, extent
        self.origin = np.array([xmin, ymin])
        self.area_km2 = (extent / 1000.0) ** 2
        self.frame = shapely.box(xmin, ymin, xmin + extent, ymin + extent)
        self.towns = self._points(self._count(0.2, minimum=1))
        self.town_r = rng.uniform(400, 1200, size=len(self.towns))

    def _count(self, per_km2: float, minimum: int = 0) -> int:
        return max(minimum, int(self.rng.poisson(per_km2 * self.area_km2)))

    def _points(self, n: int, margin: float = 0.0) -> np.ndarray:
        lo = np.array([self.xmin - margin, self.ymin - margin])
        return lo + self.rng.uniform(0, self.extent + 2 * margin, size=(n, 2))

    def urban(self, p: np.ndarray) -> np.ndarray:
        """Settlement density in [0.15, 1]: high near town centres."""
        d2 = ((p[:, None, :] - self.towns[None, :, :]) ** 2).sum(-1)
        return 0.15 + 0.85 * np.exp(-d2 / (2 * self.town_r**2)).max(axis=1)

    def build(self) -> tuple[list[_Layer], np.ndarray]:
        """All paint layers in order, and the road polygons (the mask)."""
        rng = self.rng
        main_lines, main_widths = self._main_roads()
        main_polys = _buffer_lines(main_lines, main_widths)
        lakes = self._lakes(shapely.STRtree(main_polys))
        local_lines, local_widths = self._local_roads(main_lines, lakes)
        lines = main_lines + local_lines
        widths = np.r_[main_widths, local_widths]
        self.centrelines = (lines, widths)  # the true road centrelines, for write_centrelines
        road_polys = _buffer_lines(lines, widths)
        road_colours = np.repeat(
            _road_colours(rng, len(lines)), [len(_chunks(line)) for line in lines], axis=0
        )
        road_tree = shapely.STRtree(road_polys)
        fields = self._fields()
        buildings, building_shadows = self._buildings(lines, widths, road_tree, lakes)
        forests = self._forests(road_polys, road_tree, lakes)
        crowns, crown_shadows = self._trees(lines, widths, buildings, lakes)
        layers = [
            *fields,
            _Layer(lakes, Cover.WATER, _jitter(rng, Cover.WATER, len(lakes), 0.08)),
            _Layer(road_polys, Cover.ROAD, road_colours),
            _Layer(building_shadows, Cover.SHADOW, _jitter(rng, Cover.SHADOW, len(building_shadows), 0.05)),
            _Layer(buildings, Cover.ROOF, _roof_colours(rng, len(buildings))),
            _Layer(crown_shadows, Cover.SHADOW, _jitter(rng, Cover.SHADOW, len(crown_shadows), 0.05)),
            _Layer(forests, Cover.TREE, _jitter(rng, Cover.TREE, len(forests), 0.08)),
            _Layer(crowns, Cover.TREE, _jitter(rng, Cover.TREE, len(crowns), 0.12)),
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

    def _fields(self) -> list[_Layer]:
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
                _Layer(
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
        for chunk in _chunks(line):
            geoms.append(shapely.LineString(chunk))
            half.append(width / 2)
    return shapely.buffer(np.array(geoms, dtype=object), np.array(half), quad_segs=4)


def write_centrelines(scene: RoadScene, path: Path) -> None:
    """Write the scene's true road centrelines (clipped to the scene) as a GeoPackage, atomically.

    One LineString per road piece inside the scene, with ``width_m`` (the painted road width) and
    ``kind`` (``main`` or ``local``), in the scene's CRS: the truth to score extracted graphs on.
    """
    import geopandas as gpd  # only this output needs it

    lines, widths = scene.centrelines
    xmin, ymax = scene.transform.c, scene.transform.f
    frame = shapely.box(
        xmin, ymax - scene.size * scene.resolution, xmin + scene.size * scene.resolution, ymax
    )
    rows = []
    for line, width in zip(lines, widths, strict=True):
        for part in shapely.get_parts(shapely.intersection(shapely.LineString(line), frame)):
            if part.geom_type == "LineString" and part.length > 0:
                rows.append((part, float(width), "main" if width >= 7 else "local"))  # main: 7-13 m
    gdf = gpd.GeoDataFrame(
        {"width_m": [r[1] for r in rows], "kind": [r[2] for r in rows]},
        geometry=gpd.GeoSeries([r[0] for r in rows], crs=scene.crs),
    )
    with atomic_output(path) as tmp:
        gdf.to_file(tmp, layer="centrelines", driver="GPKG", engine="pyogrio", geometry_type="LineString")


def synth_roads(
    out: str | Path,
    count: int,
    size: int,
    seed: int,
    resolution: float | None = None,
    block: int = 1024,
    progress: bool = True,
) -> list[tuple[Path, Path]]:
    """Write ``count`` synthetic road scenes as 4-band GeoTIFFs with matching road masks.

    Each scene ``i`` goes to ``out/images/scene_<i>.tif`` (uint8 R, G, B, NIR; tiled 256,
    deflate; EPSG:32633) and ``out/masks/scene_<i>.tif`` (uint8, 1 = road, 0 = background, same
    grid), with the true road centrelines in ``out/centrelines/scene_<i>.gpkg``. Scenes are
    generated as vector geometry and rasterised ``block`` x ``block`` windows at
    a time, so a 20000 x 20000 scene fits in bounded memory. The same arguments give byte-identical
    files; each file is written atomically.

    Args:
        out: output folder (created).
        count: number of scenes.
        size: width and height of each scene in pixels.
        seed: random seed.
        resolution: pixel size in metres; when None each scene draws one in [0.5, 1.0].
        block: window size used for rendering and writing (multiples of 256 are most efficient).
        progress: show a tqdm bar over windows.

    Returns:
        ``[(image_path, mask_path), ...]`` in scene order.

    Raises:
        ConfigError: ``count``, ``size``, ``seed``, ``block`` or ``resolution`` out of range.
    """
    if count < 1:
        raise ConfigError(f"count must be >= 1, got {count}")
    if size < 32:
        raise ConfigError(f"size must be >= 32 pixels, got {size}")
    if seed < 0:
        raise ConfigError(f"seed must be >= 0, got {seed}")
    if block < 32:
        raise ConfigError(f"block must be >= 32 pixels, got {block}")
    if resolution is not None and not 0 < resolution <= 100:
        raise ConfigError(f"resolution must be in (0, 100] metres, got {resolution}")
    root = Path(out)
    width = max(3, len(str(count - 1)))
    pairs = []
    for i in range(count):
        name = f"scene_{i:0{width}d}.tif"
        scene = RoadScene.generate(size, seed, resolution, index=i)
        image_path, mask_path = root / "images" / name, root / "masks" / name
        scene.write(image_path, mask_path, block=block, progress=progress)
        write_centrelines(scene, root / "centrelines" / name.replace(".tif", ".gpkg"))
        log.info(
            "wrote %s (%d px, %.2f m, %d features)", image_path, size, scene.resolution, scene.n_features
        )
        pairs.append((image_path, mask_path))
    return pairs
