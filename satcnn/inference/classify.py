"""Classification on the streaming engine: every ``P x P`` window at stride ``S`` to a class-map COG.

The class map is uint8 (class index, nodata 255) on a grid ``S`` times coarser than the input:
pixel ``(i, j)`` holds the argmax class of the input window with rows ``[i*S, i*S + P)`` and
columns ``[j*S, j*S + P)``. The raster is processed in blocks of about ``block`` input pixels that
overlap by ``P - S``, which gives the same map as one pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import rasterio
import torch
import torch.nn.functional as F
from affine import Affine
from rasterio.windows import Window

from satcnn.checks import require_at_least, require_choice
from satcnn.errors import ConfigError, ModelError
from satcnn.inference.device import torch_device
from satcnn.inference.engine import ASK_VERSION, PredictStats, stream_raster
from satcnn.inference.options import TTA_KINDS
from satcnn.inference.tta import tta_mean
from satcnn.inference.window_plan import Model, StreamSettings, WindowPlan
from satcnn.io.cog import Colormap
from satcnn.io.output_tags import OutputTags
from satcnn.io.raster import RasterInfo

__all__ = [
    "CLASS_NODATA",
    "ClassMapJob",
    "ClassifyStats",
    "class_fractions",
    "class_fractions_of",
    "class_map_transform",
    "classify",
    "classify_raster",
    "default_colormap",
]

CLASS_NODATA = 255
Block = tuple[int, int, int, int]  # output rows i0:i1, columns j0:j1

_TAB10 = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
]


@dataclass(frozen=True)
class ClassifyStats(PredictStats):
    """``PredictStats`` plus the class map's per-class pixel counts (nodata excluded).

    Attributes:
        class_counts: Output pixels per class name, in class order.
    """

    class_counts: dict[str, int] = field(default_factory=dict)

    @property
    def class_fractions(self) -> dict[str, float]:
        """Share of each class among the valid output pixels."""
        return class_fractions(self.class_counts)


def class_fractions(counts: Mapping[str, int]) -> dict[str, float]:
    """Share of each class among ``counts`` (output pixels per class, nodata excluded)."""
    total = sum(counts.values())
    return {k: (v / total if total else 0.0) for k, v in counts.items()}


def default_colormap(n_classes: int) -> dict[int, tuple[int, int, int, int]]:
    """A colour per class (tab10, repeating) and transparent black for nodata (255)."""
    cmap: dict[int, tuple[int, int, int, int]] = {
        i: (*_TAB10[i % len(_TAB10)], 255) for i in range(n_classes)
    }
    cmap[CLASS_NODATA] = (0, 0, 0, 0)
    return cmap


def class_map_transform(src_transform: Affine, patch_size: int, stride: int, align: str = "center") -> Affine:
    """Transform of a class map whose pixel ``(i, j)`` is the window at input ``(i*S, j*S)``.

    With ``align="center"`` the output pixel is the central ``S x S`` block of its ``P x P``
    window (offset ``(P - S) / 2`` input pixels); with ``"corner"`` it starts at the window's
    top-left corner.
    """
    off = (patch_size - stride) / 2 if align == "center" else 0.0
    return src_transform @ Affine.translation(off, off) @ Affine.scale(stride)


def class_fractions_of(path: Path, classes: Sequence[str]) -> dict[str, float]:
    """Class shares of an existing class map (nodata excluded)."""
    counts = np.zeros(len(classes), np.int64)
    with rasterio.open(path) as ds:
        for _, win in ds.block_windows(1):
            a = ds.read(1, window=win)
            counts += np.bincount(a[a != CLASS_NODATA].ravel(), minlength=len(classes))[: len(classes)]
    total = int(counts.sum())
    return {c: (int(n) / total if total else 0.0) for c, n in zip(classes, counts, strict=True)}


@dataclass(frozen=True)
class ClassMapJob:
    """A class-map run's settings (checked by the caller), which plan the blocks of a raster.

    Attributes:
        patch_size: ``P``, the classifier's window.
        classes: ``K`` class names (K <= 255).
        stride: ``S``.
        block: Approximate block side in input pixels.
        align: ``"center"`` or ``"corner"`` (see ``class_map_transform``).
        colormap: Colour table ``{class index: (r, g, b[, a])}``; ``None``: tab10.
        tta: ``none``, ``flip`` or ``d4``: each block's class probabilities (softmax) are
            averaged over these transforms before the argmax (see ``satcnn.inference.tta``).
    """

    patch_size: int
    classes: tuple[str, ...]
    stride: int
    block: int = 2048
    align: Literal["center", "corner"] = "center"
    colormap: Colormap | None = None
    tta: str = "none"

    @property
    def min_size(self) -> int:
        """A raster must hold at least one window."""
        return self.patch_size

    def plan(self, info: RasterInfo) -> _ClassMapPlan:
        """The blocks of ``info`` and the class map's profile and tags."""
        return _ClassMapPlan(self, info)


class _ClassMapPlan(WindowPlan[Block]):
    unit_name = "block"

    def __init__(self, job: ClassMapJob, info: RasterInfo) -> None:
        self.job = job
        P, S, K = job.patch_size, job.stride, len(job.classes)
        out_h, out_w = (info.height - P) // S + 1, (info.width - P) // S + 1
        step = max(1, (job.block - P) // S + 1)  # output pixels per block side
        self.batches = [
            [(i0, min(i0 + step, out_h), j0, min(j0 + step, out_w))]
            for i0 in range(0, out_h, step)
            for j0 in range(0, out_w, step)
        ]
        self.counts = np.zeros(K, np.int64)
        self.profile = {
            "crs": info.crs,
            "transform": class_map_transform(info.transform, P, S, job.align),
            "width": out_w,
            "height": out_h,
            "count": 1,
            "dtype": "uint8",
            "nodata": CLASS_NODATA,
        }
        self.output_tags = OutputTags(
            "class_map", job.tta, classes=job.classes, patch_size=P, stride=S, align=job.align
        )
        self.writer_options = {
            "overview_resampling": "nearest",
            "band_descriptions": ["class"],
            "colormap": job.colormap if job.colormap is not None else default_colormap(K),
        }

    def window(self, unit: Block) -> Window:
        i0, i1, j0, j1 = unit
        P, S = self.job.patch_size, self.job.stride
        return Window(j0 * S, i0 * S, (j1 - j0 - 1) * S + P, (i1 - i0 - 1) * S + P)  # type: ignore[call-arg]

    def compute(self, model: Model, x: torch.Tensor, batch: Sequence[Block]) -> torch.Tensor:
        (i0, i1, j0, j1), K = batch[0], len(self.job.classes)
        if self.job.tta == "none":
            scores = model(x)
        else:  # a window under a flip or rotation is still a window of the grid: (H - P) % S == 0
            scores = tta_mean(lambda z: model(z).float().softmax(1), x, self.job.tta)
        if tuple(scores.shape) != (1, K, i1 - i0, j1 - j0):
            raise ModelError(
                f"classifier output has shape {tuple(scores.shape)} for an input of "
                f"{tuple(x.shape)}; expected (1, {K}, {i1 - i0}, {j1 - j0}) for {K} classes, "
                f"patch size {self.job.patch_size} and stride {self.job.stride}"
            )
        return scores.argmax(1).to(torch.uint8)

    def encode(
        self, batch: Sequence[Block], out: np.ndarray, keep: np.ndarray, valid: np.ndarray | None
    ) -> Iterable[tuple[np.ndarray, Window]]:
        (i0, i1, j0, j1), K = batch[0], len(self.job.classes)
        cls = out[0] if keep[0] else np.full((i1 - i0, j1 - j0), CLASS_NODATA, np.uint8)
        if valid is not None and keep[0]:
            bad = torch.from_numpy(~valid[0])[None, None].float()
            P, S = self.job.patch_size, self.job.stride
            cls[F.max_pool2d(bad, kernel_size=P, stride=S)[0, 0].numpy() > 0] = CLASS_NODATA
        self.counts += np.bincount(cls[cls != CLASS_NODATA].ravel(), minlength=K)[:K]
        yield cls, Window(j0, i0, j1 - j0, i1 - i0)  # type: ignore[call-arg]


def classify_raster(
    model: Model,
    src: str | Path,
    dst: str | Path,
    *,
    patch_size: int,
    classes: Sequence[str],
    stride: int | None = None,
    block: int = 2048,
    transform_input: Callable[[torch.Tensor], torch.Tensor] | None = None,
    align: Literal["center", "corner"] = "center",
    colormap: Colormap | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
    bands: int | Sequence[str] | None = None,
    dtypes: Sequence[str] | None = None,
    prefetch: int = 2,
    gdal_cache_mb: int | None = 64,
    tags: Mapping[str, Any] | None = None,
    overviews: bool = True,
    blocksize: int = 512,
    tta: str = "none",
) -> ClassifyStats:
    """Classify every ``P x P`` window at stride ``S`` with a fully convolutional patch classifier.

    The map has ``(H - P) // S + 1`` rows and ``(W - P) // S + 1`` columns and is georeferenced
    by ``class_map_transform``. A pixel is nodata if any input pixel of its window is invalid.

    Args:
        model: Maps ``(N, C, H, W)`` to ``(N, K, (H - P) // S + 1, (W - P) // S + 1)`` scores.
        src: Input raster (at least ``P`` pixels each side).
        dst: Output COG (replaced atomically).
        patch_size: ``P``, the classifier's window.
        classes: ``K`` class names (K <= 255), written to the tags (``OutputTags.classes``).
        stride: ``S`` (default ``P``).
        block: Approximate block side in input pixels.
        transform_input: Applied to each block on the device before the model.
        align: ``"center"`` or ``"corner"`` (see ``class_map_transform``).
        colormap: Colour table ``{class index: (r, g, b[, a])}``; default tab10.
        device, progress, bands, dtypes, prefetch, gdal_cache_mb, tags, overviews, blocksize:
            As in ``satcnn.inference.window_plan.StreamSettings`` (``tags`` are extra output tags).
        tta: ``none``, ``flip`` or ``d4`` (see ``ClassMapJob``).

    Returns:
        Timings and per-class pixel counts.
    """
    require_at_least("patch_size", patch_size, 1)
    require_at_least("stride", stride, 1)
    require_at_least("block", block, 1)
    require_choice("tta", tta, TTA_KINDS)
    if not 1 <= len(classes) <= 255:
        raise ConfigError(f"need between 1 and 255 classes for a uint8 class map, got {len(classes)}")
    job = ClassMapJob(patch_size, tuple(classes), stride or patch_size, block, align, colormap, tta)
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
    return classify(model, src, dst, job, settings)


def classify(
    model: Model,
    src: str | Path,
    dst: str | Path,
    job: ClassMapJob,
    settings: StreamSettings,
    version: str | object | None = ASK_VERSION,
) -> ClassifyStats:
    """``classify_raster`` with settings already checked (the runner's entry, which passes the
    ``version`` of a remote source it asked already; see ``stream_raster``)."""
    stats, plan = stream_raster(model, src, dst, job, settings, version)
    assert isinstance(plan, _ClassMapPlan)
    counts = {name: int(c) for name, c in zip(job.classes, plan.counts, strict=True)}
    return ClassifyStats(**vars(stats), class_counts=counts)
