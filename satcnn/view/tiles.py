"""Web Mercator tiles and pixel values of one layer, rendered on demand from its COG by rio-tiler.

rio-tiler reads the window a z/x/y tile covers from the overview that fits its zoom, warps it
to Web Mercator and encodes the PNG; this module only chooses bands, stretch and colours:

- ``rgb`` / ``cir``: the input's bands 1-2-3 (true colour) or 4-1-2 (colour infrared), each
  stretched between its 2nd and 98th percentile (computed once per file, on an overview);
- ``prob``: the probability (``satcnn.io.road_mask.road_encoding``) on the magma ramp;
- ``mask``: road pixels red, the rest transparent;
- ``classes``: the class map in its own colour table (satcnn writes one), else the default;
- ``truth``: the road mask against the truth mask ``satcnn evaluate`` scored it with: true
  positives green, false positives orange, misses blue.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import rasterio
from rio_tiler.colormap import cmap
from rio_tiler.errors import PointOutsideBounds, TileOutsideBounds
from rio_tiler.io import Reader
from rio_tiler.models import ImageData

from satcnn.io.output_tags import read_output_tags
from satcnn.io.road_mask import road_encoding

__all__ = ["LayerKind", "RenderedLayer", "blank_png", "colour_table", "pixel_value", "render_tile"]

LayerKind = Literal["rgb", "cir", "prob", "mask", "classes", "truth"]
Colormap = dict[int, tuple[int, int, int, int]]
STRETCH_PERCENTILES = (2.0, 98.0)
ROAD_RED = (255, 0, 0, 255)
TILE_SIZE = 256
TRUTH_COLOURS: Colormap = {
    0: (0, 0, 0, 0),
    1: (0, 200, 83, 255),
    2: (255, 145, 0, 255),
    3: (41, 121, 255, 255),
}
"""``truth`` layer: 1 true positive, 2 false positive, 3 miss (0: true negative, transparent)."""


@dataclass(frozen=True)
class RenderedLayer:
    """A layer as the server renders it: which file, which bands, which look."""

    path: Path
    kind: LayerKind
    truth: Path | None = None  # ``truth`` layers: the truth mask ``path`` is compared with

    @property
    def bands(self) -> tuple[int, ...]:
        """The 1-based band indexes read."""
        return {"rgb": (1, 2, 3), "cir": (4, 1, 2)}.get(self.kind, (1,))


@functools.cache
def blank_png() -> bytes:
    """A transparent tile, for tiles outside a layer."""
    data = np.zeros((1, TILE_SIZE, TILE_SIZE), dtype="uint8")
    return ImageData(data, np.zeros((TILE_SIZE, TILE_SIZE), dtype="uint8")).render(img_format="PNG")


@functools.lru_cache(maxsize=256)
def _stretch(path: Path, bands: tuple[int, ...]) -> tuple[tuple[float, float], ...]:
    """Per band, the 2nd and 98th percentile of its valid pixels (read from an overview)."""
    with Reader(str(path)) as src:
        img = src.preview(indexes=bands, max_size=1024)
    ranges = []
    for b in range(img.count):
        valid = img.array[b].compressed()
        lo, hi = np.percentile(valid, STRETCH_PERCENTILES) if valid.size else (0.0, 1.0)
        ranges.append((float(lo), float(hi) if hi > lo else float(lo) + 1.0))
    return tuple(ranges)


@functools.lru_cache(maxsize=256)
def _probability_scale(path: Path) -> float:
    with rasterio.open(path) as ds:
        scale = road_encoding(ds).scale
    return 1.0 if scale is None else float(scale)


@functools.cache
def _ramp() -> Colormap:
    """Magma for 0..254 (probability), transparent for 255 (nodata)."""
    magma = cmap.get("magma")
    assert isinstance(magma, dict)
    ramp: Colormap = {int(k): (int(v[0]), int(v[1]), int(v[2]), int(v[3])) for k, v in magma.items()}
    ramp[255] = (0, 0, 0, 0)
    return ramp


@functools.lru_cache(maxsize=256)
def colour_table(path: Path) -> Colormap:
    """The class map's own colour table, else satcnn's default for its classes."""
    with rasterio.open(path) as ds:
        try:
            table = ds.colormap(1)
        except ValueError:
            table = {}
        if table:
            return {int(k): (int(v[0]), int(v[1]), int(v[2]), int(v[3])) for k, v in table.items()}
        tags = read_output_tags(ds)
    from satcnn.inference.classify import default_colormap  # imports torch: only for maps without a table

    return default_colormap(len(tags.classes) if tags and tags.classes else 10)


def render_tile(layer: RenderedLayer, z: int, x: int, y: int) -> bytes:
    """The z/x/y Web Mercator tile of ``layer`` as PNG (transparent outside the raster)."""
    nearest = layer.kind in ("mask", "classes")
    try:
        with Reader(str(layer.path)) as src:
            img = src.tile(
                x, y, z, indexes=layer.bands, resampling_method="nearest" if nearest else "bilinear"
            )
    except TileOutsideBounds:
        return blank_png()
    if layer.kind in ("rgb", "cir"):
        return img.rescale(in_range=_stretch(layer.path, layer.bands)).render(img_format="PNG")
    if layer.kind == "truth" and layer.truth is not None:
        return _truth_tile(img, layer.truth, z, x, y)
    if layer.kind == "mask":
        data = (img.array.filled(0) != 0).astype("uint8")
        return ImageData(data, img.mask).render(img_format="PNG", colormap={0: (0, 0, 0, 0), 1: ROAD_RED})
    if layer.kind == "prob":
        p = img.array.astype("float32") * _probability_scale(layer.path)
        data = np.ma.MaskedArray(np.clip(np.rint(p.filled(0) * 254), 0, 254), mask=img.array.mask)
        coded = ImageData(data.filled(255).astype("uint8"), img.mask)
        return coded.render(img_format="PNG", colormap=_ramp())
    return img.render(img_format="PNG", colormap=colour_table(layer.path))


def _truth_tile(pred: ImageData, truth_path: Path, z: int, x: int, y: int) -> bytes:
    try:
        with Reader(str(truth_path)) as src:
            truth = src.tile(x, y, z, indexes=(1,), resampling_method="nearest")
    except TileOutsideBounds:
        return blank_png()
    p = pred.array.filled(0)[0] != 0
    t = truth.array.filled(0)[0] != 0
    code = np.where(p & t, 1, np.where(p, 2, np.where(t, 3, 0))).astype("uint8")
    valid = (pred.mask > 0) & (truth.mask > 0)
    return ImageData(code[None], (valid * 255).astype("uint8")).render(
        img_format="PNG", colormap=TRUTH_COLOURS
    )


def pixel_value(layer: RenderedLayer, lon: float, lat: float) -> list[float] | None:
    """The layer's band values at a longitude/latitude (probabilities decoded), or None outside."""
    try:
        with Reader(str(layer.path)) as src:
            point = src.point(lon, lat, indexes=layer.bands)
    except PointOutsideBounds:
        return None
    values = point.array
    if bool(np.ma.getmaskarray(values).all()):
        return None
    if layer.kind == "prob":
        return [round(float(v) * _probability_scale(layer.path), 4) for v in values.filled(0)]
    return [float(v) for v in values.filled(0)]
