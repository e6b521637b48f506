"""Streaming raster inference: windows in, Cloud Optimized GeoTIFF out.

Three stages overlap: a reader thread reads batches of windows (zero fill outside the raster)
with their valid-data masks, the calling thread runs the model under ``torch.inference_mode``,
and a writer thread writes each window's core into an ``AtomicCOGWriter``. At most
``prefetch`` batches wait between stages, so memory does not grow with the raster.

Output encodings of ``predict_raster`` (``nodata`` overrides the default nodata value):

==================  =========  ======================================  ===============
``output``          dtype      values                                  default nodata
==================  =========  ======================================  ===============
``prob_uint8``      uint8      ``round(p * 254)`` (scale 1/254 stored)  255
``prob_float32``    float32    ``p`` in [0, 1]                          NaN
``mask``            uint8      ``1`` where ``p >= threshold`` else 0    255
==================  =========  ======================================  ===============

A pixel is nodata in the output where it is invalid in the input: every band equals the
input nodata value, or the dataset mask (internal mask / alpha band) is 0. Invalid input pixels
are zero-filled before the model sees them, like pixels beyond the raster edge.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import rasterio
import torch
import torch.nn.functional as F
from affine import Affine
from rasterio.windows import Window
from tqdm.auto import tqdm

from satcnn.errors import ConfigError, ModelError
from satcnn.inference.windows import Tile, tile_grid
from satcnn.io.cog import AtomicCOGWriter, Colormap
from satcnn.io.raster import open_raster
from satcnn.io.reader import WindowReader

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_NODATA",
    "UINT8_SCALE",
    "ClassifyStats",
    "PredictStats",
    "classify_raster",
    "predict_raster",
]

OutputKind = Literal["prob_uint8", "prob_float32", "mask"]
DEFAULT_NODATA: dict[str, float] = {"prob_uint8": 255, "prob_float32": math.nan, "mask": 255}
UINT8_SCALE = 254
CLASS_NODATA = 255

Model = Callable[[torch.Tensor], torch.Tensor]
B = TypeVar("B")
R = TypeVar("R")
C = TypeVar("C")


@dataclass(frozen=True)
class PredictStats:
    """What a run did and how long it took.

    Attributes:
        path: The output file.
        pixels: Input raster pixels (height x width).
        windows: Windows (or blocks) processed.
        seconds: Wall time, from opening the input to the published COG.
        model_seconds: Time in the model (transfer to the device, forward, transfer back).
        read_seconds: Time in the reader thread.
        write_seconds: Time in the writer thread.
        finalize_seconds: Time converting the temporary file to a COG.
    """

    path: Path
    pixels: int
    windows: int
    seconds: float
    model_seconds: float
    read_seconds: float
    write_seconds: float
    finalize_seconds: float

    @property
    def megapixels_per_s(self) -> float:
        """End-to-end throughput in input megapixels per second."""
        return self.pixels / 1e6 / self.seconds if self.seconds > 0 else math.inf


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
        total = sum(self.class_counts.values())
        return {k: (v / total if total else 0.0) for k, v in self.class_counts.items()}


@dataclass
class _Timers:
    model: float = 0.0
    read: float = 0.0
    write: float = 0.0


def _pipeline(
    items: Iterable[B],
    read: Callable[[B], R],
    compute: Callable[[R], C],
    write: Callable[[C], None],
    prefetch: int,
) -> None:
    """Run read (thread) -> compute (caller) -> write (thread), at most ``prefetch`` in flight each."""
    prefetch = max(1, prefetch)
    it = iter(items)
    reads: deque[Future[R]] = deque()
    writes: deque[Future[None]] = deque()
    with (
        ThreadPoolExecutor(1, thread_name_prefix="satcnn-read") as rpool,
        ThreadPoolExecutor(1, thread_name_prefix="satcnn-write") as wpool,
    ):
        try:
            for item in islice(it, prefetch):
                reads.append(rpool.submit(read, item))
            while reads:
                data = reads.popleft().result()
                for item in islice(it, 1):
                    reads.append(rpool.submit(read, item))
                result = compute(data)
                writes.append(wpool.submit(write, result))
                while len(writes) > prefetch:
                    writes.popleft().result()
            while writes:
                writes.popleft().result()
        except BaseException:
            for f in reads:
                f.cancel()
            for g in writes:
                g.cancel()
            raise


def _prepare_model(model: Model, device: torch.device) -> Model:
    if isinstance(model, torch.nn.Module):
        model.eval()
        model.to(device)
    return model


def _device(device: str | torch.device) -> torch.device:
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available; use device='cpu'")
    return dev


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _gdal_env(cache_mb: int | None) -> rasterio.Env:
    """A rasterio environment that bounds GDAL's block cache (rasterio applies it process-wide)."""
    return rasterio.Env(GDAL_CACHEMAX=cache_mb * 2**20) if cache_mb else rasterio.Env()


def _check_paths(src: Path, dst: Path) -> None:
    if src.resolve() == dst.resolve():
        raise ConfigError(f"output {dst} is the input raster; choose another output path")


def _encode(
    prob: np.ndarray, valid: np.ndarray | None, output: OutputKind, threshold: float, nodata: float
) -> np.ndarray:
    """Encode probabilities ``(h, w)`` as the output dtype, with nodata where not valid."""
    if output == "prob_float32":
        out = prob.astype(np.float32, copy=True)
    elif output == "prob_uint8":
        out = np.rint(np.clip(prob, 0.0, 1.0) * UINT8_SCALE).astype(np.uint8)
    else:
        out = (prob >= threshold).astype(np.uint8)
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
    return out


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
    output: OutputKind = "prob_uint8",
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
        threshold: Probability threshold for ``output="mask"``.
        device: Torch device.
        progress: Show a tqdm bar over windows.
        nodata: Output nodata value; ``None`` takes the default of ``output``.
        bands: Expected band count or names, checked before any compute.
        dtypes: Allowed input data types.
        prefetch: Batches in flight between stages.
        gdal_cache_mb: GDAL block cache for this run (GDAL's default is 5% of RAM, which
            fills up on large rasters); ``None`` keeps the current setting.
        tags: Extra dataset tags for the output.
        overviews: Build COG overviews.
        blocksize: COG tile size.

    Returns:
        Timing and size figures.

    Raises:
        InputFileNotFoundError, RasterError: The input is missing or unusable, or the output
            folder is not writable.
        ConfigError: Invalid window settings or output option.
        ModelError: The model's output does not have the expected shape.
    """
    t0 = time.perf_counter()
    src, dst = Path(src), Path(dst)
    if output not in DEFAULT_NODATA:
        raise ConfigError(f"output must be one of {', '.join(DEFAULT_NODATA)}, got {output!r}")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    out_nodata = DEFAULT_NODATA[output] if nodata is None else nodata
    if (
        output != "prob_float32"
        and out_nodata != 255
        and not (output == "mask" and out_nodata in range(2, 256))
    ):
        raise ConfigError(f"nodata {out_nodata} collides with {output} values; use 255")
    info = open_raster(src, bands=bands, dtypes=dtypes)
    _check_paths(src, dst)
    tiles = tile_grid(info.height, info.width, window, margin, size_multiple)
    dev = _device(device)
    model = _prepare_model(model, dev)
    timers = _Timers()

    out_dtype = "float32" if output == "prob_float32" else "uint8"
    profile = {
        "crs": info.crs,
        "transform": info.transform,
        "width": info.width,
        "height": info.height,
        "count": 1,
        "dtype": out_dtype,
        "nodata": out_nodata,
    }
    all_tags: dict[str, Any] = {"SATCNN_OUTPUT": output, "SATCNN_SOURCE": src.name}
    if output == "mask":
        all_tags["SATCNN_THRESHOLD"] = threshold
    all_tags.update(tags or {})
    writer = AtomicCOGWriter(
        dst,
        profile,
        overviews=overviews,
        overview_resampling="nearest" if output == "mask" else "average",
        blocksize=blocksize,
        tags=all_tags,
        band_descriptions=["road_probability" if output != "mask" else "road_mask"],
        scales=[1.0 / UINT8_SCALE] if output == "prob_uint8" else None,
    )
    batches = [tiles[i : i + batch_size] for i in range(0, len(tiles), batch_size)]
    bar = tqdm(total=len(tiles), unit="win", desc=src.name, disable=not progress)

    with _gdal_env(gdal_cache_mb), rasterio.open(src) as ds, writer:
        reader = WindowReader(ds, bands)

        def read(batch: list[Tile]) -> tuple[list[Tile], np.ndarray, np.ndarray | None]:
            t = time.perf_counter()
            pairs = [reader.read(tile.read) for tile in batch]
            x = np.stack([p[0] for p in pairs])
            masks = [p[1] for p in pairs]
            valid = None
            if any(m is not None for m in masks):
                valid = np.stack([np.ones(x.shape[2:], bool) if m is None else m for m in masks])
            timers.read += time.perf_counter() - t
            return batch, x, valid

        def compute(
            data: tuple[list[Tile], np.ndarray, np.ndarray | None],
        ) -> tuple[list[Tile], np.ndarray, np.ndarray | None]:
            batch, x, valid = data
            n, _, h, w = x.shape
            prob = np.zeros((n, h, w), np.float32)
            keep = np.ones(n, bool) if valid is None else valid.any(axis=(1, 2))
            if keep.any():
                t = time.perf_counter()
                with torch.inference_mode():
                    xt = torch.from_numpy(x[keep]).to(dev, non_blocking=True)
                    if transform_input is not None:
                        xt = transform_input(xt)
                    out = _as_probability(model(xt), int(keep.sum()), h, w, logits)
                    prob[keep] = out.float().cpu().numpy()
                _sync(dev)
                timers.model += time.perf_counter() - t
            bar.update(n)
            return batch, prob, valid

        def write(data: tuple[list[Tile], np.ndarray, np.ndarray | None]) -> None:
            t = time.perf_counter()
            batch, prob, valid = data
            for i, tile in enumerate(batch):
                rs, cs = tile.core_slices
                v = None if valid is None else valid[i, rs, cs]
                writer.write(_encode(prob[i, rs, cs], v, output, threshold, out_nodata), tile.core)
            timers.write += time.perf_counter() - t

        try:
            _pipeline(batches, read, compute, write, prefetch)
        finally:
            bar.close()
        t_fin = time.perf_counter()
    finalize = time.perf_counter() - t_fin
    stats = PredictStats(
        path=dst,
        pixels=info.width * info.height,
        windows=len(tiles),
        seconds=time.perf_counter() - t0,
        model_seconds=timers.model,
        read_seconds=timers.read,
        write_seconds=timers.write,
        finalize_seconds=finalize,
    )
    logger.info(
        "%s -> %s: %d windows, %.2f MP/s (model %.1f s of %.1f s)",
        src,
        dst,
        stats.windows,
        stats.megapixels_per_s,
        stats.model_seconds,
        stats.seconds,
    )
    return stats


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
) -> ClassifyStats:
    """Classify every ``P x P`` window at stride ``S`` with a fully convolutional patch classifier.

    The output is a uint8 class-map COG (class index, nodata 255) on a grid ``S`` times coarser
    than the input: pixel ``(i, j)`` holds the argmax class of the input window with rows
    ``[i*S, i*S + P)`` and columns ``[j*S, j*S + P)``, so the map has ``(H - P) // S + 1`` rows
    and ``(W - P) // S + 1`` columns. Its georeferencing follows ``class_map_transform``. A pixel
    is nodata if any input pixel of its window is invalid. The raster is processed in blocks of
    about ``block`` input pixels that overlap by ``P - S``, which gives the same map as one pass.

    Args:
        model: Maps ``(N, C, H, W)`` to ``(N, K, (H - P) // S + 1, (W - P) // S + 1)`` scores.
        src: Input raster (at least ``P`` pixels each side).
        dst: Output COG (replaced atomically).
        patch_size: ``P``, the classifier's window.
        classes: ``K`` class names (K <= 255), written to the tags ``CLASS_NAMES`` (JSON) and
            ``CLASS_<index>``.
        stride: ``S`` (default ``P``).
        block: Approximate block side in input pixels.
        transform_input: Applied to each block on the device before the model.
        align: ``"center"`` or ``"corner"`` (see ``class_map_transform``).
        colormap: Colour table ``{class index: (r, g, b[, a])}``; default tab10.
        device: Torch device.
        progress: Show a tqdm bar over blocks.
        bands: Expected band count or names, checked before any compute.
        dtypes: Allowed input data types.
        prefetch: Blocks in flight between stages.
        gdal_cache_mb: GDAL block cache for this run (GDAL's default is 5% of RAM, which
            fills up on large rasters); ``None`` keeps the current setting.
        tags: Extra dataset tags.
        overviews: Build COG overviews (nearest resampling).
        blocksize: COG tile size.

    Returns:
        Timings and per-class pixel counts.
    """
    t0 = time.perf_counter()
    src, dst = Path(src), Path(dst)
    P, S = patch_size, stride or patch_size
    if P < 1 or S < 1:
        raise ConfigError(f"patch_size and stride must be >= 1, got {P} and {S}")
    if not 1 <= len(classes) <= 255:
        raise ConfigError(f"need between 1 and 255 classes for a uint8 class map, got {len(classes)}")
    K = len(classes)
    info = open_raster(src, bands=bands, dtypes=dtypes, min_size=P)
    _check_paths(src, dst)
    out_h, out_w = (info.height - P) // S + 1, (info.width - P) // S + 1
    step = max(1, (block - P) // S + 1)  # output pixels per block side
    blocks = [
        (i0, min(i0 + step, out_h), j0, min(j0 + step, out_w))
        for i0 in range(0, out_h, step)
        for j0 in range(0, out_w, step)
    ]
    dev = _device(device)
    model = _prepare_model(model, dev)
    timers = _Timers()
    counts = np.zeros(K, np.int64)

    all_tags: dict[str, Any] = {
        "SATCNN_OUTPUT": "class_map",
        "SATCNN_SOURCE": src.name,
        "CLASS_NAMES": json.dumps(list(classes)),
        "PATCH_SIZE": P,
        "STRIDE": S,
        "ALIGN": align,
        **{f"CLASS_{i}": name for i, name in enumerate(classes)},
    }
    all_tags.update(tags or {})
    profile = {
        "crs": info.crs,
        "transform": class_map_transform(info.transform, P, S, align),
        "width": out_w,
        "height": out_h,
        "count": 1,
        "dtype": "uint8",
        "nodata": CLASS_NODATA,
    }
    writer = AtomicCOGWriter(
        dst,
        profile,
        overviews=overviews,
        overview_resampling="nearest",
        blocksize=blocksize,
        tags=all_tags,
        band_descriptions=["class"],
        colormap=colormap if colormap is not None else default_colormap(K),
    )
    bar = tqdm(total=len(blocks), unit="block", desc=src.name, disable=not progress)
    Block = tuple[int, int, int, int]

    with _gdal_env(gdal_cache_mb), rasterio.open(src) as ds, writer:
        reader = WindowReader(ds, bands)

        def read(b: Block) -> tuple[Block, np.ndarray, np.ndarray | None]:
            t = time.perf_counter()
            i0, i1, j0, j1 = b
            win = Window(j0 * S, i0 * S, (j1 - j0 - 1) * S + P, (i1 - i0 - 1) * S + P)  # type: ignore[call-arg]
            x, valid = reader.read(win)
            timers.read += time.perf_counter() - t
            return b, x, valid

        def compute(data: tuple[Block, np.ndarray, np.ndarray | None]) -> tuple[Block, np.ndarray]:
            b, x, valid = data
            i0, i1, j0, j1 = b
            t = time.perf_counter()
            with torch.inference_mode():
                xt = torch.from_numpy(x[None]).to(dev, non_blocking=True)
                if transform_input is not None:
                    xt = transform_input(xt)
                scores = model(xt)
                if tuple(scores.shape) != (1, K, i1 - i0, j1 - j0):
                    raise ModelError(
                        f"classifier output has shape {tuple(scores.shape)} for an input of "
                        f"{tuple(xt.shape)}; expected (1, {K}, {i1 - i0}, {j1 - j0}) for {K} classes, "
                        f"patch size {P} and stride {S}"
                    )
                cls = scores[0].argmax(0).to(torch.uint8).cpu().numpy()
            _sync(dev)
            timers.model += time.perf_counter() - t
            if valid is not None:
                bad = torch.from_numpy(~valid)[None, None].float()
                invalid = F.max_pool2d(bad, kernel_size=P, stride=S)[0, 0].numpy() > 0
                cls[invalid] = CLASS_NODATA
            counts[:] += np.bincount(cls[cls != CLASS_NODATA].ravel(), minlength=K)[:K]
            bar.update(1)
            return b, cls

        def write(data: tuple[Block, np.ndarray]) -> None:
            t = time.perf_counter()
            (i0, i1, j0, j1), cls = data
            writer.write(cls, Window(j0, i0, j1 - j0, i1 - i0))  # type: ignore[call-arg]
            timers.write += time.perf_counter() - t

        try:
            _pipeline(blocks, read, compute, write, prefetch)
        finally:
            bar.close()
        t_fin = time.perf_counter()
    finalize = time.perf_counter() - t_fin
    return ClassifyStats(
        path=dst,
        pixels=info.width * info.height,
        windows=len(blocks),
        seconds=time.perf_counter() - t0,
        model_seconds=timers.model,
        read_seconds=timers.read,
        write_seconds=timers.write,
        finalize_seconds=finalize,
        class_counts={name: int(c) for name, c in zip(classes, counts, strict=True)},
    )
