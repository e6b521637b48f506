"""One raster from a STAC item's assets: the asset as it is, or a virtual stack (a GDAL VRT).

A multi-band asset whose bands are the model's, in order, is opened as it is. Otherwise the
bands (one per asset, Sentinel-2 style, or some bands of one asset) become one GDAL VRT, built
in memory at open time: its sources are the assets' hrefs, read in place through GDAL's virtual
file systems (``/vsicurl/``, ``/vsis3/``, ...; each signed by ``SATCNN_HREF_SIGNER`` just then, so
short-lived signatures are fresh), and its bands carry the model's band names as descriptions,
each source's nodata value and data type.

The assets must share one grid (CRS, transform, size), else the item is refused naming the assets
and their grids; ``--resample-to ASSET`` resamples every band (bilinear) onto that asset's grid
(same CRS only).
"""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import RasterioError
from rasterio.io import DatasetReader

from satcnn.errors import RasterError
from satcnn.io.remote import is_href, signed
from satcnn.io.stac_assets import StackPlan

__all__ = ["Grid", "gdal_path", "open_stack", "vrt_xml"]

_VSI = {"http": "/vsicurl/", "https": "/vsicurl/", "s3": "/vsis3/", "gs": "/vsigs/", "az": "/vsiaz/"}


def gdal_path(href: str) -> str:
    """``href`` as GDAL opens it: signed and under its virtual file system, or a local path."""
    if not is_href(href):
        return os.path.abspath(href)
    url = signed(href)
    scheme, _, rest = url.partition("://")
    return f"/vsicurl/{url}" if scheme.lower() in ("http", "https") else _VSI[scheme.lower()] + rest


@dataclass(frozen=True)
class Grid:
    """An asset's header: the grid, and per band the type and nodata value."""

    crs: CRS | None
    transform: Affine
    width: int
    height: int
    dtypes: tuple[str, ...]
    nodata: tuple[float | None, ...]

    @property
    def key(self) -> tuple[object, ...]:
        return (self.crs, tuple(round(v, 9) for v in self.transform[:6]), self.width, self.height)

    def describe(self) -> str:
        res = abs(self.transform.a)
        crs = self.crs.to_string() if self.crs else "no CRS"
        return f"{self.width} x {self.height} px at {res:g} m, {crs}"


def _header(href: str, asset: str, where: str) -> Grid:
    try:
        with rasterio.open(gdal_path(href)) as ds:
            return Grid(ds.crs, ds.transform, ds.width, ds.height, tuple(ds.dtypes), tuple(ds.nodatavals))
    except RasterioError as err:
        raise RasterError(f"asset {asset!r} ({href}) cannot be read: {err}", where) from None


_GDAL_TYPES = {
    "uint8": "Byte",
    "int8": "Int8",
    "uint16": "UInt16",
    "int16": "Int16",
    "uint32": "UInt32",
    "int32": "Int32",
    "float32": "Float32",
    "float64": "Float64",
}


def vrt_xml(plan: StackPlan, grids: dict[str, Grid], target: Grid) -> str:
    """The VRT of ``plan``'s bands on ``target``'s grid (``grids``: each asset's header)."""
    root = ET.Element("VRTDataset", rasterXSize=str(target.width), rasterYSize=str(target.height))
    if target.crs is not None:
        ET.SubElement(root, "SRS").text = target.crs.to_wkt()
    t = target.transform
    ET.SubElement(root, "GeoTransform").text = ", ".join(repr(v) for v in (t.c, t.a, t.b, t.f, t.d, t.e))
    for number, src in enumerate(plan.sources, 1):
        grid = grids[src.asset]
        dtype = grid.dtypes[src.band - 1]
        nodata = grid.nodata[src.band - 1]
        band = ET.SubElement(
            root, "VRTRasterBand", dataType=_GDAL_TYPES.get(dtype, "Float64"), band=str(number)
        )
        ET.SubElement(band, "Description").text = src.name
        if nodata is not None:
            ET.SubElement(band, "NoDataValue").text = "nan" if math.isnan(nodata) else repr(nodata)
        kind = "ComplexSource" if nodata is not None else "SimpleSource"
        source = ET.SubElement(band, kind)
        if grid.key != target.key:
            source.set("resampling", "bilinear")
        ET.SubElement(source, "SourceFilename", relativeToVRT="0").text = gdal_path(src.href)
        ET.SubElement(source, "SourceBand").text = str(src.band)
        ET.SubElement(source, "SrcRect", xOff="0", yOff="0", xSize=str(grid.width), ySize=str(grid.height))
        x0, y0 = ~target.transform * (grid.transform.c, grid.transform.f)
        x1, y1 = ~target.transform * grid.transform * (grid.width, grid.height)
        ET.SubElement(
            source, "DstRect", xOff=repr(x0), yOff=repr(y0), xSize=repr(x1 - x0), ySize=repr(y1 - y0)
        )
        if nodata is not None:
            ET.SubElement(source, "NODATA").text = "nan" if math.isnan(nodata) else repr(nodata)
    return ET.tostring(root, encoding="unicode")


def _grids(plan: StackPlan, where: str) -> tuple[dict[str, Grid], Grid]:
    hrefs = {s.asset: s.href for s in plan.sources}
    if plan.resample_to is not None:
        hrefs.setdefault(*plan.resample_to)
    grids = {asset: _header(href, asset, where) for asset, href in hrefs.items()}
    for src in plan.sources:
        if src.band > len(grids[src.asset].dtypes):
            raise RasterError(
                f"asset {src.asset!r} has {len(grids[src.asset].dtypes)} bands, its metadata names "
                f"band {src.band} {src.name!r}",
                where,
            )
    if plan.resample_to is not None:
        target = grids[plan.resample_to[0]]
        other = [a for a in plan.assets if grids[a].crs != target.crs]
        if other:
            raise RasterError(
                f"--resample-to {plan.resample_to[0]}: asset(s) {', '.join(other)} are in another CRS "
                f"({grids[other[0]].describe()}); resampling keeps to one CRS",
                where,
            )
        return grids, target
    used = [a for a in plan.assets]
    if len({grids[a].key for a in used}) > 1:
        listed = "; ".join(f"{a}: {grids[a].describe()}" for a in used)
        raise RasterError(
            f"assets on different grids ({listed}); pass --resample-to ASSET to resample them to one "
            "asset's grid",
            where,
        )
    return grids, grids[used[0]]


@contextmanager
def open_stack(plan: StackPlan, where: str) -> Iterator[DatasetReader]:
    """Open ``plan`` as one raster (in the caller's GDAL environment, see ``io.remote.gdal_env``).

    Raises:
        RasterError: naming the item ``where``: an asset that cannot be read, or assets on
            different grids without ``resample_to``.
    """
    if plan.as_is:
        src = plan.sources[0]
        try:
            ds = rasterio.open(gdal_path(src.href))
        except RasterioError as err:
            raise RasterError(f"asset {src.asset!r} ({src.href}) cannot be read: {err}", where) from None
        with ds:
            yield ds
        return
    grids, target = _grids(plan, where)
    try:
        ds = rasterio.open(vrt_xml(plan, grids, target))
    except RasterioError as err:
        raise RasterError(f"cannot stack the assets {', '.join(plan.assets)}: {err}", where) from None
    with ds:
        yield ds
