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

from satcnn.checks import require_above, require_at_least, require_in_range
from satcnn.data.synth_world import COLOURS, Cover, Layer, WorldGenerator
from satcnn.io.atomic import atomic_output

__all__ = ["BANDS", "Cover", "RoadScene", "check_synth_options", "synth_roads", "write_centrelines"]

log = logging.getLogger(__name__)

BANDS: list[str] = ["red", "green", "blue", "nir"]
_EPSG = 32633  # UTM zone 33N (central Europe); origins are drawn inside the zone's valid range

_NOISE_SD = np.array([3, 4, 4, 4, 5, 1.5, 3, 4, 2, 7], dtype=np.float32)  # DN, indexed by Cover
_CROWN_AMP = np.array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0.22], dtype=np.float32)  # canopy texture by Cover


def _plane_wave(x: np.ndarray, y: np.ndarray, k: float, angle: float, phase: float) -> np.ndarray:
    """``sin(k (x cos(angle) + y sin(angle)) + phase)`` on the (h, w) grid from a row ``x`` and column ``y``.

    Expanded as sin(a + b) = sin a cos b + cos a sin b so only 1-D sines are evaluated.
    """
    a = (k * np.cos(angle)) * x + phase
    b = (k * np.sin(angle)) * y
    return (np.sin(a) * np.cos(b) + np.cos(a) * np.sin(b)).astype(np.float32, copy=False)


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
        layers: list[Layer],
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
        self._colour[0] = COLOURS[Cover.NONE]
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
        require_above("resolution", resolution, unit="metres")
        extent = size * resolution
        x0 = float(np.floor(rng.uniform(320_000, 680_000)))
        y0 = float(np.floor(rng.uniform(5_000_000, 5_600_000)))
        transform = Affine(resolution, 0.0, x0, 0.0, -resolution, y0)
        gen = WorldGenerator(rng, x0, y0 - extent, extent)
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
        """GeoTIFF profile of the image (4 bands); the mask drops the colour options, uses ``count=1``.

        Band 4 is NIR, not alpha: GDAL would tag the 4th band of a uint8 GTiff as alpha by
        default (``PHOTOMETRIC=RGB`` with an alpha extra sample), which makes readers mask every
        pixel whose NIR is 0. ``ALPHA=UNSPECIFIED`` writes it as an unspecified extra sample,
        read back as colour interpretation ``undefined``.
        """
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
            "photometric": "RGB",
            "alpha": "UNSPECIFIED",
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
        colour = ("photometric", "alpha")
        mask_profile = {
            **{k: v for k, v in profile.items() if k not in colour},
            "count": 1,
            "interleave": "band",
        }
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


def check_synth_options(
    count: int, size: int, seed: int, resolution: float | None, block: int = 1024
) -> None:
    """Raise ``OptionError`` unless ``synth_roads`` takes these values."""
    require_at_least("count", count, 1)
    require_at_least("size", size, 32, "pixels")
    require_at_least("seed", seed, 0)
    require_at_least("block", block, 32, "pixels")
    require_in_range("resolution", resolution, 0, 100, low_open=True, unit="metres")


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

    Each scene ``i`` goes to ``out/images/scene_<i>.tif`` (uint8 R, G, B, NIR with colour
    interpretation red, green, blue, undefined (no alpha) and band descriptions red, green, blue,
    nir; tiled 256, deflate; EPSG:32633) and ``out/masks/scene_<i>.tif`` (uint8, 1 = road,
    0 = background, same grid). Scenes are generated as vector geometry and rasterised
    ``block`` x ``block`` windows at a time, so a 20000 x 20000 scene fits in bounded memory.
    The same arguments give byte-identical files; each file is written atomically.

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
    check_synth_options(count, size, seed, resolution, block)
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
