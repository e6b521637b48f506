"""Whether an input's ground resolution suits the model: warned of, never refused.

A shipped model's card records the ground resolution it was trained at (``resolution_m``; the
road model: 1 m). A CNN sees objects at the scale it learnt them: on 0.27 m SpaceNet imagery the
1 m road model finds no road, since a road is almost four times as wide in pixels as any it saw.
An input whose pixel size differs from the model's by more than :data:`RATIO` either way gets a
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

from affine import Affine
from rasterio.crs import CRS

from satcnn.vector.graph import Metric

__all__ = ["RATIO", "resolution_mismatch"]

RATIO = 1.5
"""Largest accepted ratio between the input's pixel size and the model's, either way. The road
model's own training tiles ranged from 1 m to about 1.46 m (``data/samples``' tile), so 1.5x
stays within what it saw; 0.6 m NAIP (1.67x finer) and 0.5 m imagery (2x) are warned of."""


def resolution_mismatch(
    transform: Affine, crs: CRS | None, height: int, width: int, model_m: float | None
) -> str | None:
    """The note for an input whose pixel size is more than ``RATIO`` from ``model_m``, else ``None``.

    Args:
        transform, crs, height, width: The input's grid.
        model_m: The model's training resolution in metres; ``None``: not known, no check.
    """
    if model_m is None or crs is None:
        return None
    size = Metric.from_raster(transform, crs, height, width).pixel_size
    if 1 / RATIO <= size / model_m <= RATIO:
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
