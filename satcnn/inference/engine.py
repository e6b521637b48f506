"""The streaming engine shared by segmentation and classification: windows in, one COG out.

Three stages overlap: a reader thread reads batches of windows (zero fill outside the raster)
with their valid-data masks, the calling thread runs the model under ``torch.inference_mode``,
and a writer thread encodes each result and writes it into an ``AtomicCOGWriter``. At most
``prefetch`` batches wait between stages, so memory does not grow with the raster.

What differs between segmentation and classification is a ``WindowPlan``: which windows to read
in which batches, what to compute from a batch, and how to encode the result for the output
grid. ``stream_raster`` does the rest (validation of the input, the reader, the device, timings,
the progress bar, the atomic COG) once for both.

Windows without any valid pixel are not given to the model; the plan encodes them as nodata.

This module is the engine's public face: it also re-exports the names its parts define
(``window_plan``: the plan and the settings; ``stream_input``: opening and reading the input;
``stream_steps``: the batch compute and the output writer), which the Ray engine shares.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from tqdm.auto import tqdm

from satcnn.inference.budget import Estimate, announce
from satcnn.inference.device import prepare_model
from satcnn.inference.stream_input import InputReader, check_crs, open_input
from satcnn.inference.stream_steps import compute_batch, output_writer
from satcnn.inference.window_plan import Model, RasterJob, StreamSettings, WindowPlan
from satcnn.io.cog import AtomicCOGWriter
from satcnn.io.raster import gdal_cache_env, open_dataset
from satcnn.io.remote import as_path, source_version

logger = logging.getLogger(__name__)

__all__ = [
    "ASK_VERSION",
    "InputReader",
    "Model",
    "PredictStats",
    "RasterJob",
    "StreamSettings",
    "WindowPlan",
    "check_crs",
    "compute_batch",
    "open_input",
    "output_writer",
    "stream_raster",
]

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
        write_seconds: Time in the writer thread (encoding included).
        finalize_seconds: Time converting the temporary file to a COG.
        georeferenced: Whether the input (and so the output) has a CRS.
    """

    path: Path
    pixels: int
    windows: int
    seconds: float
    model_seconds: float
    read_seconds: float
    write_seconds: float
    finalize_seconds: float
    georeferenced: bool = True

    @property
    def megapixels_per_s(self) -> float:
        """End-to-end throughput in input megapixels per second."""
        return self.pixels / 1e6 / self.seconds if self.seconds > 0 else math.inf


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


Read = tuple[list[Any], np.ndarray, np.ndarray | None]  # units, windows, valid masks
Computed = tuple[list[Any], np.ndarray, np.ndarray, np.ndarray | None]  # units, results, kept, valid


class _Stages:
    """The three stages of one raster's pipeline, timed; each runs on its own thread."""

    def __init__(
        self,
        plan: WindowPlan[Any],
        model: Model,
        settings: StreamSettings,
        reader: InputReader,
        writer: AtomicCOGWriter,
    ) -> None:
        self.plan, self.model, self.settings, self.writer = plan, model, settings, writer
        self.reader = reader
        self.src = reader.path
        self.timers = _Timers()
        self.units = sum(len(b) for b in plan.batches)
        self.bar = tqdm(
            total=self.units,
            unit=plan.unit_name,
            desc=Path(self.src).name,  # not the dataset's name: a STAC item's stack is VRT text
            disable=not settings.progress,
        )
        info = reader.reader.ds
        unit = {"win": "window"}.get(plan.unit_name, plan.unit_name)
        self.estimate = Estimate(self.src, self.units, info.width * info.height / 1e6, unit)

    def read(self, batch: list[Any]) -> Read:
        t = time.perf_counter()
        x, valid = self.reader.read([self.plan.window(u) for u in batch])
        self.timers.read += time.perf_counter() - t
        return batch, x, valid

    def compute(self, data: Read) -> Computed:
        batch, x, valid = data
        t = time.perf_counter()
        out, keep = compute_batch(self.plan, self.model, self.settings, batch, x, valid)
        if keep.any():
            self.timers.model += time.perf_counter() - t
        self.bar.update(len(batch))
        self.estimate.update(len(batch))
        return batch, out, keep, valid

    def write(self, data: Computed) -> None:
        t = time.perf_counter()
        for array, window in self.plan.encode(*data):
            self.writer.write(array, window)
        self.timers.write += time.perf_counter() - t


ASK_VERSION = object()
"""``stream_raster``'s default ``version``: ask the server (``source_version``) before the read."""


def stream_raster(
    model: Model,
    src: str | Path,
    dst: str | Path,
    job: RasterJob,
    settings: StreamSettings,
    version: str | object | None = ASK_VERSION,
) -> tuple[PredictStats, WindowPlan[Any]]:
    """Run ``model`` over ``src`` as ``job`` plans it and publish the result at ``dst`` as a COG.

    Args:
        model: Takes float32 ``(N, C, h, w)`` raw digital numbers (after ``transform_input``).
        src: Input raster.
        dst: Output COG (replaced atomically).
        job: What to compute (see ``satcnn.inference.segment`` and ``satcnn.inference.classify``).
        settings: Device, input checks, prefetch, output tags and COG settings.
        version: A remote source's version, already asked before this read (the runner's
            staleness check asks it); by default it is asked here, before the bytes are read, so a
            file replaced during the read is redone on a rerun.

    Returns:
        Timings and sizes, and the plan (for what it counted, e.g. class pixels).

    Raises:
        InputFileNotFoundError, RasterError: The input is missing or unusable.
        ConfigError: The output is the input.
    """
    t0 = time.perf_counter()
    src, dst = as_path(src), Path(dst)
    if version is ASK_VERSION:
        version = source_version(src)
    info = open_input(src, dst, job, settings)
    plan = job.plan(info)
    model = prepare_model(model, settings.device, settings.compile)
    writer = output_writer(src, dst, plan, settings, version if isinstance(version, str) else None)
    announce(src, dst, plan, writer)
    with gdal_cache_env(settings.gdal_cache_mb), open_dataset(src) as ds:
        reader = InputReader(ds, settings, src)  # the input rule's checks, before any output
        with writer:
            stages = _Stages(plan, model, settings, reader, writer)
            try:
                _pipeline(plan.batches, stages.read, stages.compute, stages.write, settings.prefetch)
            finally:
                stages.bar.close()
            t_fin = time.perf_counter()
    stats = PredictStats(
        path=dst,
        pixels=info.width * info.height,
        windows=stages.units,
        seconds=time.perf_counter() - t0,
        model_seconds=stages.timers.model,
        read_seconds=stages.timers.read,
        write_seconds=stages.timers.write,
        finalize_seconds=time.perf_counter() - t_fin,
        georeferenced=info.crs is not None,
    )
    logger.info(
        "%s -> %s: %d %s, %.2f MP/s (model %.1f s of %.1f s)",
        *(src, dst, stats.windows, plan.unit_name),
        *(stats.megapixels_per_s, stats.model_seconds, stats.seconds),
    )
    return stats, plan
