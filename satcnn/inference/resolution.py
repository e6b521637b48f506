"""Whether an input's ground resolution suits the model: warned of, never refused.

A shipped model's card records the ground resolution it was trained at (``resolution_m``; the
road model: 1 m). A CNN sees objects at the scale it learnt them: on 0.27 m SpaceNet imagery the
1 m road model finds no road, since a road is almost four times as wide in pixels as any it saw.
An input more than :data:`FINER` times finer or :data:`COARSER` times coarser than the model gets a
note (``satcnn.io.notes``: once per run, with the count and an example, and in the manifest's
warnings of each such input) naming both resolutions and how to resample (``rio warp``, which
comes with rasterio, as the README's other hints; or ``gdalwarp -tr``).

The pixel size is the side of a square pixel of the same ground area
(:meth:`satcnn.vector.graph.Metric.pixel_size`): the CRS unit in metres for a projected CRS, and
for a geographic CRS degrees scaled at the raster's centre latitude (approximate, well under 1 %
over a tile). Inputs without a CRS, and models whose card records no resolution (checkpoints,
MLflow models, exports), are not checked.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning, RasterioError

from satcnn.errors import SatcnnError
from satcnn.io.notes import note
from satcnn.io.raster import RasterInfo, open_dataset
from satcnn.vector.graph import Metric

logger = logging.getLogger(__name__)

__all__ = ["COARSER", "FINER", "note_resolution", "resolution_mismatch"]

# Where the shipped road model loses about a tenth of its IoU (0.60 at 1 m) on the first 600 x 600 m
# of held-out Massachusetts tile 13, resampled from 1 m (bilinear up, box down) and scored at 1 m:
# 0.27 m 0.01, 0.5 m 0.27, 0.67 m 0.46, 0.75 m 0.51, 0.8 m 0.54, 1.25 m 0.60, 1.33 m 0.58,
# 1.5 m 0.54, 2 m 0.44, 3 m 0.20. Finer input hurts sooner: roads get wider in pixels than any it
# saw (its training tiles ranged from 1 m to about 1.46 m).
FINER = 1.25
"""Largest accepted ratio of the model's pixel size to a finer input's (0.8 m for a 1 m model)."""
COARSER = 1.5
"""Largest accepted ratio of a coarser input's pixel size to the model's (1.5 m for a 1 m model)."""


def resolution_mismatch(
    transform: Affine, crs: CRS | None, height: int, width: int, model_m: float | None
) -> str | None:
    """The note for an input more than ``FINER`` finer or ``COARSER`` coarser than ``model_m``, else ``None``.

    Args:
        transform, crs, height, width: The input's grid.
        model_m: The model's training resolution in metres; ``None``: not known, no check.
    """
    if model_m is None or crs is None:
        return None
    size = Metric.from_raster(transform, crs, height, width).pixel_size
    if 1 / FINER <= size / model_m <= COARSER:
        return None
    finer = size < model_m
    how = f"{model_m / size:.1f}x finer" if finer else f"{size / model_m:.1f}x coarser"
    target = " --dst-crs EPSG:<a projected CRS in metres>" if crs.is_geographic else ""
    return (
        f"has a ground resolution of {size:.2g} m, {how} than the {model_m:g} m the model was trained "
        f"at: it may miss what it should find; resample the input to {model_m:g} m first "
        f"(`rio warp in.tif resampled.tif{target} --res {model_m:g} --resampling "
        f"{'average' if finer else 'bilinear'}`, or gdalwarp -tr)"
    )


def note_resolution(src: Path, model_m: float, info: RasterInfo | None = None) -> None:
    """Note (``satcnn.io.notes``: once per run for all such inputs) that ``src`` is far from ``model_m``.

    Args:
        src: The input.
        model_m: The model's training resolution in metres.
        info: The input's header when already read; else the header is read (a local file's, or one
            request for a remote one).
    """
    if info is None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)  # no CRS: not checked
                with open_dataset(src) as ds:
                    grid = (ds.transform, ds.crs, ds.height, ds.width)
        except (RasterioError, SatcnnError) as err:  # the outputs are written: not worth a failure
            logger.debug("%s: resolution not checked: %s", src, err)
            return
    else:
        grid = (info.transform, info.crs, info.height, info.width)
    message = resolution_mismatch(*grid, model_m)
    if message is not None:
        note(src, message)
