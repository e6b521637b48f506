"""Segmentation on the streaming engine: overlapping windows in, a probability or mask COG out.

Output encodings (``nodata`` overrides the default nodata value):

==================  =========  ======================================  ===============
``output``          dtype      values                                  default nodata
==================  =========  ======================================  ===============
``prob_uint8``      uint8      ``round(p * 254)`` (scale 1/254 stored)  255
``prob_float32``    float32    ``p`` in [0, 1]                          NaN
``mask``            uint8      ``1`` where ``p >= threshold`` else 0    255
==================  =========  ======================================  ===============

The mask follows the one road rule of ``satcnn.io.road_mask`` (road where ``p >= threshold``,
threshold in [0, 1]); the output's tags are ``satcnn.io.output_tags.OutputTags``.

A pixel is nodata in the output where it is invalid in the input: every band equals the
input nodata value, or the dataset mask (internal mask / alpha band) is 0. Invalid input pixels
are zero-filled before the model sees them, like pixels beyond the raster edge.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import rasterio
import torch
from rasterio.windows import Window

from satcnn.checks import require_at_least, require_choice
from satcnn.errors import ConfigError, ModelError
from satcnn.inference.device import torch_device
from satcnn.inference.engine import PredictStats, stream_raster
from satcnn.inference.options import TTA_KINDS
from satcnn.inference.tta import tta_mean
from satcnn.inference.window_plan import Model, StreamSettings, WindowPlan
from satcnn.inference.windows import Tile, tile_grid
from satcnn.io.cog import AtomicCOGWriter
from satcnn.io.output_tags import OutputTags, read_output_tags
from satcnn.io.raster import RasterInfo
from satcnn.io.road_mask import UINT8_SCALE, RoadEncoding, check_threshold, road_mask

__all__ = [
    "DEFAULT_NODATA",
    "RoadOutput",
    "SegmentationJob",
    "mask_from_probability",
    "predict_raster",
]

# What a road model writes (one file each; `both` writes the first and the last). The output kinds of
# every satcnn output, class maps included, are `io.output_tags.OutputKind`.
RoadOutput = Literal["prob_uint8", "prob_float32", "mask"]
DEFAULT_NODATA: dict[str, float] = {"prob_uint8": 255, "prob_float32": math.nan, "mask": 255}


def _encode(
    prob: np.ndarray, valid: np.ndarray | None, output: RoadOutput, threshold: float, nodata: float
) -> np.ndarray:
    """Encode probabilities ``(h, w)`` as the output dtype, with nodata where not valid."""
    if output == "prob_float32":
        out = prob.astype(np.float32, copy=True)
    elif output == "prob_uint8":
        out = np.rint(np.clip(prob, 0.0, 1.0) * UINT8_SCALE).astype(np.uint8)
    else:
        out = road_mask(prob, threshold).astype(np.uint8)
    if valid is not None:
        out[~valid] = nodata
    return out


def _as_probability(out: torch.Tensor, n: int, h: int, w: int, logits: bool) -> torch.Tensor:
    """Model output -> ``(N, h, w)`` probability of the positive class."""
    if out.ndim == 4 and out.shape[1] in (1, 2):
        if out.shape[1] == 2:
            out = out.softmax(1)[:, 1] if logits else out[:, 1]
        else:
            out = out[:, 0].sigmoid() if logits else out[:, 0]
    elif out.ndim == 3:
        out = out.sigmoid() if logits else out
    else:
        raise ModelError(
            f"model output has shape {tuple(out.shape)}; expected (N, 1, H, W) (or (N, 2, H, W) "
            "background/foreground) for a segmentation model"
        )
    if tuple(out.shape) != (n, h, w):
        raise ModelError(
            f"model output has spatial shape {tuple(out.shape[1:])} for an input of {(h, w)}; a "
            "segmentation model must keep the input size (check size_multiple)"
        )
    return out.float()


@dataclass(frozen=True)
class SegmentationJob:
    """A segmentation run's settings (checked by the caller), which plan the windows of a raster.

    Attributes:
        window: Window side in pixels (a multiple of ``size_multiple``).
        margin: Context pixels on each side of a window's core.
        batch_size: Windows per model call.
        size_multiple: The model's input sides must be a multiple of this.
        output: Encoding (see the module docstring).
        threshold: Probability threshold for ``output="mask"`` (road where ``p >= threshold``).
        nodata: Output nodata value.
        logits: The model returns logits; apply sigmoid (softmax for two channels).
        min_size: Smallest raster side accepted (e.g. the training patch).
        tta: Test-time augmentation per window: ``none``, ``flip`` or ``d4`` (see
            ``satcnn.inference.tta``); probabilities are averaged.
    """

    window: int = 512
    margin: int = 32
    batch_size: int = 4
    size_multiple: int = 1
    output: RoadOutput = "prob_uint8"
    threshold: float = 0.5
    nodata: float = 255
    logits: bool = False
    min_size: int | None = None
    tta: str = "none"

    def plan(self, info: RasterInfo) -> WindowPlan[Tile]:
        """The grid of ``info`` in batches, and the output's profile and tags."""
        return _SegmentationPlan(self, info)


class _SegmentationPlan(WindowPlan[Tile]):
    def __init__(self, job: SegmentationJob, info: RasterInfo) -> None:
        self.job = job
        tiles = tile_grid(info.height, info.width, job.window, job.margin, job.size_multiple)
        self.batches = [tiles[i : i + job.batch_size] for i in range(0, len(tiles), job.batch_size)]
        mask = job.output == "mask"
        self.profile = {
            "crs": info.crs,
            "transform": info.transform,
            "width": info.width,
            "height": info.height,
            "count": 1,
            "dtype": "float32" if job.output == "prob_float32" else "uint8",
            "nodata": job.nodata,
        }
        self.output_tags = OutputTags(job.output, job.tta, job.threshold if mask else None)
        self.writer_options = {
            "overview_resampling": "nearest" if mask else "average",
            "band_descriptions": ["road_mask" if mask else "road_probability"],
            "scales": [1.0 / UINT8_SCALE] if job.output == "prob_uint8" else None,
        }

    def window(self, unit: Tile) -> Window:
        return unit.read

    def compute(self, model: Model, x: torch.Tensor, batch: Sequence[Tile]) -> torch.Tensor:
        logits = self.job.logits

        def probability(z: torch.Tensor) -> torch.Tensor:
            return _as_probability(model(z), z.shape[0], z.shape[2], z.shape[3], logits)

        return tta_mean(probability, x, self.job.tta)

    def encode(
        self, batch: Sequence[Tile], out: np.ndarray, keep: np.ndarray, valid: np.ndarray | None
    ) -> Iterable[tuple[np.ndarray, Window]]:
        prob = out
        if not keep.all():  # windows without valid pixels were not computed
            h, w = int(batch[0].read.height), int(batch[0].read.width)
            prob = np.zeros((len(batch), h, w), np.float32)
            if keep.any():
                prob[keep] = out
        job = self.job
        for i, tile in enumerate(batch):
            rs, cs = tile.core_slices
            v = None if valid is None else valid[i, rs, cs]
            yield _encode(prob[i, rs, cs], v, job.output, job.threshold, job.nodata), tile.core


def predict_raster(
    model: Model,
    src: str | Path,
    dst: str | Path,
    *,
    window: int = 512,
    margin: int = 32,
    batch_size: int = 4,
    size_multiple: int = 1,
    transform_input: Callable[[torch.Tensor], torch.Tensor] | None = None,
    logits: bool = False,
    output: RoadOutput = "prob_uint8",
    threshold: float = 0.5,
    device: str | torch.device = "cpu",
    progress: bool = True,
    nodata: float | None = None,
    bands: int | Sequence[str] | None = None,
    dtypes: Sequence[str] | None = None,
    prefetch: int = 2,
    gdal_cache_mb: int | None = 64,
    tags: Mapping[str, Any] | None = None,
    overviews: bool = True,
    blocksize: int = 512,
    tta: str = "none",
) -> PredictStats:
    """Run a segmentation model over a raster window by window and write a COG.

    Windows overlap by ``margin`` pixels on each side and only their cores are written (see
    ``satcnn.inference.windows``), so for a model whose receptive field radius is at most
    ``margin`` the result equals one pass over the whole raster with zero padding.

    Args:
        model: Maps float32 ``(N, C, h, w)`` raw digital numbers (after ``transform_input``) to
            ``(N, 1, h, w)`` probabilities (or logits with ``logits=True``); ``(N, 2, h, w)`` is
            read as background/foreground. An ``nn.Module`` is put in eval mode on ``device``.
        src: Input raster.
        dst: Output COG (replaced atomically).
        window: Window side in pixels (a multiple of ``size_multiple``).
        margin: Context pixels on each side of a window's core.
        batch_size: Windows per model call.
        size_multiple: The model's input sides must be a multiple of this.
        transform_input: Applied to each batch on the device before the model (e.g. normalise).
        logits: The model returns logits; apply sigmoid (softmax for two channels).
        output: Encoding (see the module docstring).
        threshold: Probability threshold for ``output="mask"`` (road where ``p >= threshold``).
        nodata: Output nodata value; ``None`` takes the default of ``output``.
        device, progress, bands, dtypes, prefetch, gdal_cache_mb, tags, overviews, blocksize:
            As in ``satcnn.inference.window_plan.StreamSettings`` (``tags`` are extra output tags).
        tta: ``none``, ``flip`` or ``d4``: average the probabilities of each window over these
            transforms (see ``satcnn.inference.tta``).

    Returns:
        Timing and size figures.

    Raises:
        InputFileNotFoundError, RasterError: The input is missing or unusable, or the output
            folder is not writable.
        ConfigError: Invalid window settings or output option.
        ModelError: The model's output does not have the expected shape.
    """
    require_choice("output", output, tuple(DEFAULT_NODATA))
    require_at_least("batch_size", batch_size, 1)
    check_threshold("threshold", threshold)
    require_choice("tta", tta, TTA_KINDS)
    out_nodata = DEFAULT_NODATA[output] if nodata is None else nodata
    if (
        output != "prob_float32"
        and out_nodata != 255
        and not (output == "mask" and out_nodata in range(2, 256))
    ):
        raise ConfigError(f"nodata {out_nodata} collides with {output} values; use 255")
    job = SegmentationJob(
        window, margin, batch_size, size_multiple, output, threshold, out_nodata, logits, tta=tta
    )
    settings = StreamSettings(
        device=torch_device(device),
        transform_input=transform_input,
        progress=progress,
        bands=bands,
        dtypes=dtypes,
        prefetch=prefetch,
        gdal_cache_mb=gdal_cache_mb,
        tags=dict(tags or {}),
        overviews=overviews,
        blocksize=blocksize,
    )
    return stream_raster(model, src, dst, job, settings)[0]


def mask_from_probability(prob: Path, dst: Path, threshold: float) -> None:
    """Threshold a ``prob_uint8`` COG into a 0/1 mask COG (255 stays nodata), block by block.

    The mask keeps the probability's tags, with ``output="mask"`` and ``threshold``; a pixel is
    road where ``value >= ceil(threshold * 254)`` (``satcnn.io.road_mask``).
    """
    encoding = RoadEncoding("probability", 1.0 / UINT8_SCALE)
    with rasterio.open(prob) as ds:
        profile = {k: ds.profile[k] for k in ("crs", "transform", "width", "height")}
        profile.update(count=1, dtype="uint8", nodata=255)
        mask_tags = replace(read_output_tags(ds) or OutputTags("mask"), output="mask", threshold=threshold)
        tags = {**ds.tags(), **mask_tags.to_tags()}
        with AtomicCOGWriter(
            dst, profile, overview_resampling="nearest", tags=tags, band_descriptions=["road_mask"]
        ) as w:
            for _, win in ds.block_windows(1):
                a = ds.read(1, window=win)
                m = encoding.road(a, threshold).astype(np.uint8)
                m[a == 255] = 255
                w.write(m, win)
