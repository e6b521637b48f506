"""Atomic Cloud Optimized GeoTIFF writing.

Windows are written into a temporary tiled GeoTIFF next to the destination
(``.<name>.tmp.tif``). On a clean close it is converted with rio-cogeo's ``cog_translate``
(deflate, 512 blocks, overviews) into ``.<name>.cog.tmp.tif`` and ``os.replace``d onto the
destination, so a reader never sees a half-written file. On an exception every temporary is
removed and nothing is left at the destination. Memory stays bounded: data goes through GDAL
window by window and rio-cogeo is told to work on disk.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import numpy as np
import rasterio
from rasterio.enums import ColorInterp
from rasterio.errors import RasterioError
from rasterio.io import DatasetWriter
from rasterio.windows import Window
from rio_cogeo.cogeo import cog_translate

from satcnn.errors import RasterError

logger = logging.getLogger(__name__)

__all__ = ["AtomicCOGWriter", "Colormap", "OverviewResampling"]

OverviewResampling = Literal["nearest", "average", "mode", "bilinear"]
Colormap = Mapping[int, tuple[int, int, int] | tuple[int, int, int, int]]

# Profile keys that describe the data; everything else (driver, compression, tiling) we set.
_DATA_KEYS = ("crs", "transform", "width", "height", "count", "dtype", "nodata")


def temp_paths(path: str | Path) -> tuple[Path, Path]:
    """The two temporaries used for ``path``: the tiled GeoTIFF and the COG before the rename."""
    p = Path(path)
    return p.with_name(f".{p.name}.tmp.tif"), p.with_name(f".{p.name}.cog.tmp.tif")


class AtomicCOGWriter:
    """Write a raster window by window; publish it as a COG only if everything succeeded.

    Use as a context manager::

        with AtomicCOGWriter(dst, profile, overview_resampling="average") as w:
            w.write(array, window)

    Args:
        path: Final destination.
        profile: Needs ``crs``, ``transform``, ``width``, ``height``, ``count``, ``dtype``; ``nodata``
            optional. Other keys are ignored.
        overviews: Build internal overviews (levels chosen by rio-cogeo down to ``blocksize``).
        overview_resampling: ``"nearest"`` (or ``"mode"``) for masks and class maps,
            ``"average"`` for probabilities.
        overview_level: Number of overview levels; ``None`` lets rio-cogeo choose.
        blocksize: COG tile size.
        compress: COG compression.
        tags: Dataset tags written to the COG (values are turned into strings).
        band_descriptions: One description per band.
        colormap: Colour table for band 1 (single-band uint8), ``{value: (r, g, b[, a])}``.
        scales: Per-band scale factor (GDAL metadata: ``physical = value * scale + offset``).
        offsets: Per-band offset.
        temp_compress: Compression of the first temporary (``None`` = uncompressed, fastest for
            unaligned window writes; costs disk).
        in_memory: Let rio-cogeo build the COG in memory (faster, not bounded); default on disk.
        overwrite: Replace an existing destination; otherwise raise ``RasterError`` at open.
        num_threads: Threads GDAL uses to compress the COG.
    """

    def __init__(
        self,
        path: str | Path,
        profile: Mapping[str, Any],
        *,
        overviews: bool = True,
        overview_resampling: OverviewResampling = "nearest",
        overview_level: int | None = None,
        blocksize: int = 512,
        compress: str = "deflate",
        tags: Mapping[str, Any] | None = None,
        band_descriptions: Sequence[str] | None = None,
        colormap: Colormap | None = None,
        scales: Sequence[float] | None = None,
        offsets: Sequence[float] | None = None,
        temp_compress: str | None = None,
        in_memory: bool = False,
        overwrite: bool = True,
        num_threads: int | Literal["ALL_CPUS"] = "ALL_CPUS",
    ) -> None:
        missing = [k for k in _DATA_KEYS[:-1] if k not in profile]
        if missing:
            raise ValueError(f"profile lacks {missing}")
        self.path = Path(path)
        self.tmp_path, self.cog_tmp_path = temp_paths(self.path)
        self.profile = {k: profile[k] for k in _DATA_KEYS if k in profile}
        self.overviews = overviews
        self.overview_resampling = overview_resampling
        self.overview_level = overview_level
        self.blocksize = blocksize
        self.compress = compress
        self.tags = {str(k): str(v) for k, v in (tags or {}).items()}
        self.band_descriptions = list(band_descriptions) if band_descriptions is not None else None
        self.colormap = dict(colormap) if colormap is not None else None
        self.scales = list(scales) if scales is not None else None
        self.offsets = list(offsets) if offsets is not None else None
        self.temp_compress = temp_compress
        self.in_memory = in_memory
        self.overwrite = overwrite
        self.num_threads = str(num_threads)
        self._ds: DatasetWriter | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def open(self) -> AtomicCOGWriter:
        """Create the temporary tiled GeoTIFF.

        Raises:
            RasterError: The destination folder does not exist or is not writable, or the
                destination exists and ``overwrite`` is false.
        """
        parent = self.path.parent
        if not parent.is_dir():
            raise RasterError(f"output folder {parent} does not exist; create it first", self.path)
        if not os.access(parent, os.W_OK):
            raise RasterError(f"output folder {parent} is not writable", self.path)
        if self.path.exists() and not self.overwrite:
            raise RasterError("output exists; remove it or allow overwriting", self.path)
        tmp_profile: dict[str, Any] = {
            **self.profile,
            "driver": "GTiff",
            "tiled": True,
            "blockxsize": min(self.blocksize, 512),
            "blockysize": min(self.blocksize, 512),
            "BIGTIFF": "IF_SAFER",
        }
        if self.temp_compress:
            tmp_profile["compress"] = self.temp_compress
        try:
            self._ds = rasterio.open(self.tmp_path, "w", **tmp_profile)
        except RasterioError as err:
            raise RasterError(f"cannot create temporary output {self.tmp_path}: {err}", self.path) from None
        try:
            self._set_metadata(self._ds)
        except BaseException:  # the temporary must not outlive a failed open (no __exit__ runs)
            self.abort()
            raise
        return self

    def write(self, array: np.ndarray, window: Window) -> None:
        """Write ``array`` (``(count, h, w)`` or ``(h, w)`` for one band) at ``window``."""
        if self._ds is None:
            raise RuntimeError("AtomicCOGWriter is not open")
        if array.ndim == 2:
            array = array[None]
        self._ds.write(array, window=window)

    def close(self) -> None:
        """Finish: build the COG and move it onto the destination."""
        if self._ds is None:
            raise RuntimeError("AtomicCOGWriter is not open")
        self._ds.close()
        self._ds = None
        try:
            self._translate()
            os.replace(self.cog_tmp_path, self.path)
            logger.info("wrote %s", self.path)
        except BaseException:
            self.abort()
            raise
        finally:
            self.tmp_path.unlink(missing_ok=True)

    def abort(self) -> None:
        """Drop everything written; leave no temporary and no destination file behind."""
        if self._ds is not None:
            try:
                self._ds.close()
            except RasterioError:  # pragma: no cover - closing a broken file
                logger.debug("closing %s failed during abort", self.tmp_path, exc_info=True)
            self._ds = None
        self.tmp_path.unlink(missing_ok=True)
        self.cog_tmp_path.unlink(missing_ok=True)
        Path(f"{self.tmp_path}.aux.xml").unlink(missing_ok=True)

    def __enter__(self) -> AtomicCOGWriter:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    # -- internals ---------------------------------------------------------------------------
    def _set_metadata(self, ds: DatasetWriter) -> None:
        if self.tags:
            ds.update_tags(**self.tags)
        if self.band_descriptions:
            for i, d in enumerate(self.band_descriptions, start=1):
                ds.set_band_description(i, d)
        if self.scales is not None:
            ds.scales = tuple(self.scales)
        if self.offsets is not None:
            ds.offsets = tuple(self.offsets)
        if self.colormap is not None:
            ds.colorinterp = [ColorInterp.palette]
            ds.write_colormap(1, self.colormap)

    def _translate(self) -> None:
        dst_kwargs: dict[str, Any] = {
            "driver": "GTiff",
            "interleave": "pixel",
            "tiled": True,
            "blockxsize": self.blocksize,
            "blockysize": self.blocksize,
            "compress": self.compress,
            "BIGTIFF": "IF_SAFER",
            "NUM_THREADS": self.num_threads,
        }
        if self.compress.lower() in ("deflate", "lzw", "zstd"):
            dst_kwargs["predictor"] = 3 if np.dtype(self.profile["dtype"]).kind == "f" else 2
        level = self.overview_level if self.overviews else 0
        cog_translate(
            self.tmp_path,
            self.cog_tmp_path,
            dst_kwargs,
            overview_level=level,
            overview_resampling=self.overview_resampling,
            in_memory=self.in_memory,
            colormap=self.colormap,
            forward_band_tags=True,
            quiet=True,
        )
