"""The streaming engine's input: a raster opened and checked, then read window by window.

``open_input`` checks a raster before any compute (sizes, CRS, bands and type, and that the
output is not the input); ``InputReader`` is the one place where inference reads input pixels,
through the pixel contract's ``WindowReader`` (or the model's input rule).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from affine import Affine
from rasterio.errors import RasterioError
from rasterio.io import DatasetReader
from rasterio.windows import Window

from satcnn.errors import ConfigError, RasterError
from satcnn.inference.window_plan import RasterJob, StreamSettings
from satcnn.io.cog import gdal_cause
from satcnn.io.raster import RasterInfo, open_raster
from satcnn.io.reader import WindowReader
from satcnn.io.remote import is_href

__all__ = ["InputReader", "check_crs", "open_input"]


class InputReader:
    """The one place where inference reads input pixels, through the pixel contract's reader."""

    def __init__(self, ds: DatasetReader, settings: StreamSettings, path: Path) -> None:
        rule = settings.inputs
        self.path = path
        self.reader = WindowReader(ds, settings.bands) if rule is None else rule.reader(ds, path)

    def read(self, windows: Sequence[Window]) -> tuple[np.ndarray, np.ndarray | None]:
        """``(n, C, h, w)`` float32 windows and their ``(n, h, w)`` valid masks (``None``: all valid).

        Raises:
            RasterError: GDAL cannot read the pixels (naming the input and what to do).
        """
        try:
            pairs = [self.reader.read(w) for w in windows]
        except RasterioError as err:
            if is_href(self.path):
                raise RasterError(
                    f"cannot read its pixels over the network after GDAL's retries ({gdal_cause(err)}); "
                    "rerun later (current outputs are kept) or allow more retries (GDAL_HTTP_MAX_RETRY)",
                    self.path,
                ) from None
            raise RasterError(
                f"cannot read its pixels, the file is truncated or damaged ({gdal_cause(err)}); "
                "re-download or re-export it",
                self.path,
            ) from None
        x = np.stack([p[0] for p in pairs])
        valid = np.stack([p[1] for p in pairs])
        return x, (None if valid.all() else valid)


def check_crs(info: RasterInfo, required: bool) -> None:
    """Refuse an input without a CRS, or with a CRS but no geotransform, when ``required``, naming
    the file and what to do.

    These are the cases rasterio warns of (``NotGeoreferencedWarning``), so a run can leave its
    warning out: satcnn says it once, in one line.

    Raises:
        RasterError: ``info`` has no CRS, or no geotransform (GDAL's identity), and one is required.
    """
    if required and info.crs is not None and info.transform == Affine.identity():
        raise RasterError(
            "has a CRS but no geotransform (GDAL reads the identity, so outputs would not line up); "
            "georeference it first (`gdalwarp` for ground control points or RPCs, `rio edit-info "
            "--transform` for a known grid), or pass --allow-no-crs to work on its pixel grid",
            info.path,
        )
    if info.crs is None and required:
        raise RasterError(
            "has no coordinate reference system (CRS); assign one (e.g. `rio edit-info --crs "
            f"EPSG:<code> {info.path}`), or pass --allow-no-crs (allow_no_crs=True) to write outputs on its "
            "pixel grid without a CRS",
            info.path,
        )


def open_input(src: Path, dst: Path, job: RasterJob, settings: StreamSettings) -> RasterInfo:
    """Open and check the input ``src`` of ``job`` (sizes, CRS, bands and type), refusing ``dst == src``."""
    sizes = [s for s in (job.min_size, settings.min_size) if s]
    checks = settings.inputs is None  # else the input rule checks bands and type, per raster
    info = open_raster(
        src,
        bands=settings.bands if checks else None,
        dtypes=settings.dtypes if checks else None,
        min_size=max(sizes, default=None),
        require_crs=False,
    )
    check_crs(info, settings.require_crs)
    if not is_href(src) and src.resolve() == dst.resolve():
        raise ConfigError(f"output {dst} is the input raster; choose another output path")
    return info
