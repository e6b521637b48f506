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
"""

from __future__ import annotations

import logging
import math
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from itertools import islice
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import numpy as np
import torch
from rasterio.errors import RasterioError
from rasterio.io import DatasetReader
from rasterio.windows import Window
from tqdm.auto import tqdm

from satcnn.errors import ConfigError, RasterError
from satcnn.inference.budget import Estimate, announce
from satcnn.inference.device import autocast, prepare_model, sync
from satcnn.inference.input_rule import InputRule
from satcnn.io.cog import AtomicCOGWriter, gdal_cause
from satcnn.io.output_tags import OutputTags, RunTags
from satcnn.io.raster import RasterInfo, gdal_cache_env, open_dataset, open_raster
from satcnn.io.reader import WindowReader
from satcnn.io.remote import as_path, is_href, source_key, source_version

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

Model = Callable[[torch.Tensor], torch.Tensor]
U = TypeVar("U")
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


@dataclass(frozen=True)
class StreamSettings:
    """How to run the engine on one raster, whatever the plan.

    Attributes:
        device: Where the model runs.
        precision: ``32``, or ``bf16-mixed`` / ``16-mixed``: the model runs under
            ``torch.autocast`` to that type; results come back as float32.
        compile: Compile the model in place with ``torch.compile`` (once per model object).
        transform_input: Applied to each batch on the device before the model (e.g. normalise).
        progress: Show a tqdm bar.
        bands: Expected band count or names, checked before any compute.
        dtypes: Allowed input data types.
        min_size: Smallest allowed raster side (in addition to the plan's own minimum).
        prefetch: Batches in flight between stages.
        gdal_cache_mb: GDAL block cache for this run (GDAL's default is 5% of RAM, which fills up
            on large rasters); ``None`` keeps the current setting.
        tags: Extra dataset tags for the output (override the plan's).
        run: The run's tags (model identity), written on the output (``satcnn infer``).
        overviews: Build COG overviews.
        blocksize: COG tile size.
        inputs: The model's input rule (band selection and checks, radiometry); when set it
            replaces the ``bands`` and ``dtypes`` checks.
        require_crs: Refuse an input without a CRS; otherwise its output is on its pixel grid
            without one.
    """

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    precision: str = "32"
    compile: bool = False
    transform_input: Callable[[torch.Tensor], torch.Tensor] | None = None
    progress: bool = True
    bands: int | Sequence[str] | None = None
    dtypes: Sequence[str] | None = None
    min_size: int | None = None
    prefetch: int = 2
    gdal_cache_mb: int | None = 64
    tags: Mapping[str, Any] = field(default_factory=dict)
    run: RunTags | None = None
    overviews: bool = True
    blocksize: int = 512
    inputs: InputRule | None = None
    require_crs: bool = True


class WindowPlan(ABC, Generic[U]):
    """One raster's work for the engine: the window plan, the compute and the encoding.

    Attributes:
        batches: Units of work in model batches (a unit is one read window).
        profile: Output grid and type (``crs``, ``transform``, ``width``, ``height``, ``count``,
            ``dtype``, ``nodata``).
        output_tags: What the output is (its kind and the plan's settings); the engine adds
            the source name and the run's tags.
        writer_options: Further ``AtomicCOGWriter`` arguments (band descriptions, ...).
        unit_name: Progress bar unit.
    """

    batches: list[list[U]]
    profile: dict[str, Any]
    output_tags: OutputTags
    writer_options: dict[str, Any]
    unit_name: str = "win"

    @abstractmethod
    def window(self, unit: U) -> Window:
        """The input window a unit reads (may extend beyond the raster)."""

    @abstractmethod
    def compute(self, model: Model, x: torch.Tensor, batch: Sequence[U]) -> torch.Tensor:
        """The results of ``x`` (the windows of ``batch`` that hold valid pixels), on the device."""

    @abstractmethod
    def encode(
        self, batch: Sequence[U], out: np.ndarray, keep: np.ndarray, valid: np.ndarray | None
    ) -> Iterable[tuple[np.ndarray, Window]]:
        """Output arrays and where they go, from the results ``out`` of the ``keep`` windows.

        Args:
            batch: The units.
            out: ``compute``'s results, one per kept window.
            keep: Per window of ``batch``: whether it held a valid pixel (and was computed).
            valid: ``(n, h, w)`` valid-pixel masks, or ``None`` when every pixel is valid.
        """


class RasterJob(Protocol):
    """Settings that plan the work on any raster (segmentation or classification)."""

    @property
    def min_size(self) -> int | None:
        """Smallest raster side the job can handle."""

    def plan(self, info: RasterInfo) -> WindowPlan[Any]:
        """The plan for the raster ``info``."""


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
    """Refuse an input without a CRS when ``required``, naming the file and the option that allows it.

    Raises:
        RasterError: ``info`` has no CRS and one is required.
    """
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


def compute_batch(
    plan: WindowPlan[Any],
    model: Model,
    settings: StreamSettings,
    batch: Sequence[Any],
    x: np.ndarray,
    valid: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """``plan``'s results for the windows ``x`` of ``batch`` that hold a valid pixel, and which those are.

    Returns:
        ``(out, keep)``: float32 (or the plan's type) results on the host, one per kept window,
        and per window of ``batch`` whether it was kept.
    """
    keep = np.ones(len(batch), bool) if valid is None else np.asarray(valid.any(axis=(1, 2)))
    out: np.ndarray = np.zeros((0,), np.float32)
    if keep.any():
        dev = settings.device
        with torch.inference_mode(), autocast(dev, settings.precision):
            xt = torch.from_numpy(x[keep]).to(dev, non_blocking=True)
            if settings.transform_input is not None:
                xt = settings.transform_input(xt)
            kept = [u for u, k in zip(batch, keep.tolist(), strict=True) if k]
            result = plan.compute(model, xt, kept)
            if result.is_floating_point() and result.dtype != torch.float32:  # autocast
                result = result.float()
            out = result.cpu().numpy()
        sync(dev)
    return out, keep


def output_writer(
    src: Path, dst: Path, plan: WindowPlan[Any], settings: StreamSettings, version: str | None = None
) -> AtomicCOGWriter:
    """The (unopened) atomic COG writer of ``plan``'s output at ``dst``, with its tags and COG settings.

    ``version``: a remote source's version (``satcnn.io.remote.source_version``), asked before its
    bytes are read, so that a file replaced during the read is redone on a rerun.
    """
    made = replace(
        plan.output_tags,
        source=src.name,
        source_href=source_key(src),
        source_version=version,
        run=settings.run,
    )
    tags = {**made.to_tags(), **settings.tags}
    return AtomicCOGWriter(
        dst,
        plan.profile,
        overviews=settings.overviews,
        blocksize=settings.blocksize,
        tags=tags,
        **plan.writer_options,
    )


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
