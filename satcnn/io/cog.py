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
import shutil
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

from satcnn.errors import OutputError, RasterError, output_error
from satcnn.io.atomic import publish

logger = logging.getLogger(__name__)

__all__ = [
    "AtomicCOGWriter",
    "Colormap",
    "OverviewResampling",
    "check_free_space",
    "free_bytes",
    "gdal_cause",
    "human_bytes",
]

OverviewResampling = Literal["nearest", "average", "mode", "bilinear"]
Colormap = Mapping[int, tuple[int, int, int] | tuple[int, int, int, int]]

# Profile keys that describe the data; everything else (driver, compression, tiling) we set.
_DATA_KEYS = ("crs", "transform", "width", "height", "count", "dtype", "nodata")


def gdal_cause(err: BaseException) -> str:
    """GDAL's own messages behind a rasterio error ("Read failed. See previous exception" hides them)."""
    chain: list[BaseException] = []
    cur: BaseException | None = err
    while cur is not None and cur not in chain and len(chain) < 5:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    texts = [" ".join(str(c).split()) for c in reversed(chain)]
    return "; ".join(dict.fromkeys(t for t in texts if t and "See previous exception" not in t)) or str(err)


def free_bytes(folder: Path) -> int | None:
    """Free bytes on the file system of ``folder`` (``shutil.disk_usage``), or None if unknown."""
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def human_bytes(n: float) -> str:
    """``1536`` -> ``1.5 KB`` (powers of 1024)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def check_free_space(path: Path, needed: int) -> None:
    """Refuse to start an output that cannot fit in the free space of its folder.

    Raises:
        OutputError: Less free space than ``needed`` bytes, naming the file and both sizes.
    """
    free = free_bytes(path.parent)
    if free is not None and free < needed:
        raise OutputError(
            f"needs up to {human_bytes(needed)} of disk (uncompressed temporary + COG) but its folder has "
            f"{human_bytes(free)} free; free space, write to another folder, or split the input "
            "(e.g. `rio clip IN part.tif --bounds ...`, one part at a time)",
            path,
        )


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
        """Create the temporary tiled GeoTIFF, once the folder is known to hold the output.

        Raises:
            OutputError: The destination folder is not writable, or has less free space than the
                output needs (:meth:`space_needed`).
            RasterError: The destination folder does not exist, or the destination exists and
                ``overwrite`` is false.
        """
        parent = self.path.parent
        if not parent.is_dir():
            raise RasterError(f"output folder {parent} does not exist; create it first", self.path)
        if not os.access(parent, os.W_OK):
            raise OutputError(f"output folder {parent} is not writable", self.path)
        if self.path.exists() and not self.overwrite:
            raise RasterError("output exists; remove it or allow overwriting", self.path)
        check_free_space(self.path, self.space_needed())
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
            raise OutputError(f"cannot create temporary output {self.tmp_path}: {err}", self.path) from None
        try:
            self._set_metadata(self._ds)
        except BaseException:  # the temporary must not outlive a failed open (no __exit__ runs)
            self.abort()
            raise
        return self

    @property
    def raw_bytes(self) -> int:
        """The output's pixels uncompressed: width x height x bands x bytes per value."""
        p = self.profile
        return int(p["width"]) * int(p["height"]) * int(p["count"]) * np.dtype(p["dtype"]).itemsize

    def space_needed(self) -> int:
        """Bytes the output may need at once: the temporary plus the COG, both at worst uncompressed.

        The temporary is uncompressed unless ``temp_compress``; the COG's overviews add at most a
        third. Compression usually makes the COG much smaller, so this is an upper bound.
        """
        raw = self.raw_bytes
        temp = raw if not self.temp_compress else raw // 2
        return temp + (raw * 4 // 3 if self.overviews else raw)

    def write(self, array: np.ndarray, window: Window) -> None:
        """Write ``array`` (``(count, h, w)`` or ``(h, w)`` for one band) at ``window``."""
        if self._ds is None:
            raise RuntimeError("AtomicCOGWriter is not open")
        if array.ndim == 2:
            array = array[None]
        try:
            self._ds.write(array, window=window)
        except RasterioError as err:
            raise OutputError(
                f"cannot write the temporary {self.tmp_path.name}: {gdal_cause(err)}", self.path
            ) from None

    def close(self) -> None:
        """Finish: build the COG and move it onto the destination."""
        if self._ds is None:
            raise RuntimeError("AtomicCOGWriter is not open")
        ds, self._ds = self._ds, None
        try:
            ds.close()  # flushes the temporary: a full disk can fail here already
            self._translate()
            publish(self.cog_tmp_path, self.path)
            logger.info("wrote %s", self.path)
        except RasterioError as err:  # before OSError: RasterioIOError is both
            self.abort()
            raise OutputError(f"cannot write the COG: {gdal_cause(err)}", self.path) from None
        except OSError as err:
            self.abort()
            raise output_error(err, self.path) from None
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
