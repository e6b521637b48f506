"""Web Mercator tiles and pixel values of one layer, rendered on demand from its COG by rio-tiler.

rio-tiler reads the window a z/x/y tile covers from the overview that fits its zoom, warps it
to Web Mercator and encodes the PNG. A layer without a CRS (``RenderedLayer.offset`` set) is read
on its pixel grid by rio-tiler's ``ImageReader`` instead: tile z/x/y of the page's frame (Leaflet's
``CRS.Simple``, ``PIXEL_ZOOM_OFFSET`` added to its zoom) covers 256 / 2^(z - offset) pixels from
column x * that - ``offset``, row y * that. This module only chooses bands, stretch and colours:

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
from rio_tiler.io import ImageReader, Reader
from rio_tiler.models import ImageData

from satcnn.io.output_tags import read_output_tags
from satcnn.io.road_mask import road_encoding

__all__ = ["LayerKind", "RenderedLayer", "blank_png", "colour_table", "pixel_value", "render_tile"]

LayerKind = Literal["rgb", "cir", "prob", "mask", "classes", "truth"]
Colormap = dict[int, tuple[int, int, int, int]]
STRETCH_PERCENTILES = (2.0, 98.0)
ROAD_RED = (255, 0, 0, 255)
TILE_SIZE = 256
PIXEL_ZOOM_OFFSET = 8
"""On a pixel grid, URL zoom 8 is one tile pixel per raster pixel (Leaflet zoom 0)."""
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
    offset: float | None = None  # on a pixel grid (no CRS): the tile's first column in the page's frame

    @property
    def bands(self) -> tuple[int, ...]:
        """The 1-based band indexes read."""
        return {"rgb": (1, 2, 3), "cir": (4, 1, 2)}.get(self.kind, (1,))


@functools.cache
def blank_png() -> bytes:
    """A transparent tile, for tiles outside a layer."""
    data = np.zeros((1, TILE_SIZE, TILE_SIZE), dtype="uint8")
    return ImageData(data, np.zeros((TILE_SIZE, TILE_SIZE), dtype="uint8")).render(img_format="PNG")


def _reader(path: Path, pixel: bool) -> Reader:
    return ImageReader(str(path)) if pixel else Reader(str(path))


def _read(path: Path, layer: RenderedLayer, z: int, x: int, y: int, bands: tuple[int, ...]) -> ImageData:
    """Tile z/x/y of ``path`` (Web Mercator, or the pixel frame); TileOutsideBounds when none of it."""
    resampling = "nearest" if layer.kind in ("mask", "classes", "truth") else "bilinear"
    if layer.offset is None:
        with Reader(str(path)) as src:
            return src.tile(x, y, z, indexes=bands, resampling_method=resampling)
    size = TILE_SIZE / 2.0 ** (z - PIXEL_ZOOM_OFFSET)
    col, row = x * size - layer.offset, y * size
    with ImageReader(str(path)) as src:
        if col >= src.width or row >= src.height or col + size <= 0 or row + size <= 0:
            raise TileOutsideBounds(f"tile {z}/{x}/{y} is outside {path}")
        bbox = (col, row + size, col + size, row)  # left, bottom, right, top: rows grow downwards
        return src.part(bbox, indexes=bands, height=TILE_SIZE, width=TILE_SIZE, resampling_method=resampling)


@functools.lru_cache(maxsize=256)
def _stretch(path: Path, bands: tuple[int, ...], pixel: bool = False) -> tuple[tuple[float, float], ...]:
    """Per band, the 2nd and 98th percentile of its valid pixels (read from an overview)."""
    with _reader(path, pixel) as src:
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
    """The z/x/y tile of ``layer`` as PNG (transparent outside the raster; see the module docstring)."""
    try:
        img = _read(layer.path, layer, z, x, y, layer.bands)
    except TileOutsideBounds:
        return blank_png()
    if layer.kind in ("rgb", "cir"):
        stretch = _stretch(layer.path, layer.bands, layer.offset is not None)
        return img.rescale(in_range=stretch).render(img_format="PNG")
    if layer.kind == "truth" and layer.truth is not None:
        return _truth_tile(img, layer, z, x, y)
    if layer.kind == "mask":
        data = (img.array.filled(0) != 0).astype("uint8")
        return ImageData(data, img.mask).render(img_format="PNG", colormap={0: (0, 0, 0, 0), 1: ROAD_RED})
    if layer.kind == "prob":
        p = np.ma.asarray(img.array, dtype="float32") * _probability_scale(layer.path)
        data = np.ma.MaskedArray(np.clip(np.rint(p.filled(0) * 254), 0, 254), mask=img.array.mask)
        coded = ImageData(data.filled(255).astype("uint8"), img.mask)
        return coded.render(img_format="PNG", colormap=_ramp())
    return img.render(img_format="PNG", colormap=colour_table(layer.path))


def _truth_tile(pred: ImageData, layer: RenderedLayer, z: int, x: int, y: int) -> bytes:
    assert layer.truth is not None
    try:
        truth = _read(layer.truth, layer, z, x, y, (1,))
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
    """The layer's band values at a longitude/latitude (probabilities decoded), or None outside.

    On a pixel grid, ``lon`` and ``lat`` are the page's frame: x (column + offset) and y (- row).
    """
    try:
        if layer.offset is None:
            with Reader(str(layer.path)) as src:
                point = src.point(lon, lat, indexes=layer.bands)
        else:
            with ImageReader(str(layer.path)) as src:
                point = src.point(np.floor(lon - layer.offset), np.floor(-lat), indexes=layer.bands)
    except PointOutsideBounds:
        return None
    values = point.array
    if bool(np.ma.getmaskarray(values).all()):
        return None
    if layer.kind == "prob":
        return [round(float(v) * _probability_scale(layer.path), 4) for v in values.filled(0)]
    return [float(v) for v in values.filled(0)]
