"""Vector layers in and out: GeoPackage (several layers in one file) or GeoParquet (one file a layer).

``out.gpkg`` receives every layer; ``out.parquet`` becomes ``out_<layer>.parquet`` per layer, since
a GeoParquet file holds one table. Files are written atomically (:mod:`satcnn.io.atomic`): a
failed run leaves no partial output and keeps what was there before.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import geopandas as gpd

from satcnn.errors import ConfigError, DataFormatError, require_file
from satcnn.io.atomic import atomic_output

__all__ = ["VECTOR_SUFFIXES", "layer_paths", "read_vector", "write_layers"]

log = logging.getLogger(__name__)

VECTOR_SUFFIXES = (".gpkg", ".parquet", ".geoparquet")
# pyogrio's warning for a layer without a CRS, once per layer: satcnn writes one only on request
# (allow_no_crs) and says so itself, once a run
_NO_CRS_WARNING = r"'crs' was not provided"
_GEOMETRY_TYPES = {"lines": "LineString", "nodes": "Point", "classes": "Polygon"}


def layer_paths(out: str | Path, layers: Sequence[str]) -> dict[str, Path]:
    """The file each layer goes to (see the module docstring).

    Raises:
        ConfigError: ``out`` does not end in .gpkg, .parquet or .geoparquet.
    """
    p = Path(out)
    suffix = p.suffix.lower()
    if suffix not in VECTOR_SUFFIXES:
        raise ConfigError(
            f"output must end in {', '.join(VECTOR_SUFFIXES)} (GeoPackage or GeoParquet), got {p.name!r}", p
        )
    if p.is_dir():
        raise ConfigError("output is a folder; name a file such as roads.gpkg", p)
    if suffix == ".gpkg":
        return dict.fromkeys(layers, p)
    return {name: p.with_name(f"{p.stem}_{name}{p.suffix}") for name in layers}


def write_layers(
    out: str | Path, frames: Mapping[str, gpd.GeoDataFrame], metadata: Mapping[str, str] | None = None
) -> list[Path]:
    """Write each GeoDataFrame as a layer named by its key; return the files written.

    ``metadata`` goes into a GeoPackage's dataset metadata (GeoParquet files get none).
    """
    paths = layer_paths(out, list(frames))
    written: list[Path] = []
    with contextlib.ExitStack() as stack:
        temps: dict[Path, Path] = {}
        for name, gdf in frames.items():
            final = paths[name]
            if final not in temps:
                temps[final] = stack.enter_context(atomic_output(final))
                written.append(final)
            tmp = temps[final]
            if final.suffix.lower() == ".gpkg":
                with warnings.catch_warnings():
                    if gdf.crs is None:  # on a pixel grid by request (allow_no_crs), which satcnn warns of
                        warnings.filterwarnings("ignore", _NO_CRS_WARNING, UserWarning)
                    gdf.to_file(
                        tmp,
                        layer=name,
                        driver="GPKG",
                        engine="pyogrio",
                        geometry_type=_GEOMETRY_TYPES.get(name, "Unknown"),
                        dataset_metadata=dict(metadata) if metadata else None,
                    )
            else:
                gdf.to_parquet(tmp)
    for path in written:
        log.info("wrote %s", path)
    return written


def read_vector(
    path: str | Path, layer: str | None = None, *, allow_no_crs: bool = False
) -> gpd.GeoDataFrame:
    """Read a vector file (GeoJSON, GeoPackage, GeoParquet, Shapefile, ...) with a CRS.

    Raises:
        InputFileNotFoundError: the file does not exist.
        DataFormatError: unreadable, or it has no CRS (and not ``allow_no_crs``).
    """
    p = require_file(path, "vector file")
    try:
        if p.suffix.lower() in (".parquet", ".geoparquet"):
            gdf = gpd.read_parquet(p)
        else:
            gdf = gpd.read_file(p, layer=layer, engine="pyogrio")
    except Exception as exc:  # pyogrio and pyarrow raise their own error families
        raise DataFormatError(f"cannot read vectors: {exc}", p) from None
    if gdf.crs is None and not allow_no_crs:
        raise DataFormatError(
            "vectors have no CRS; add one (e.g. in Python: "
            f"`geopandas.read_file('{p}').set_crs('EPSG:<code>').to_file('with_crs.gpkg')`)",
            p,
        )
    return gdf
