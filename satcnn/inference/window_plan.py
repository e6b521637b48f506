"""What the streaming engine is given: a raster's window plan and how to run it.

A ``RasterJob`` (segmentation's or classification's settings) makes a ``WindowPlan`` for each
raster: which windows to read in which batches, what to compute from a batch and how to encode
the results for the output grid. ``StreamSettings`` hold what does not depend on the plan (the
device, precision, input checks, prefetch, output tags and COG settings).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import numpy as np
import torch
from rasterio.windows import Window

from satcnn.inference.input_rule import InputRule
from satcnn.io.output_tags import OutputTags, RunTags
from satcnn.io.raster import RasterInfo

__all__ = ["Model", "RasterJob", "StreamSettings", "WindowPlan"]

Model = Callable[[torch.Tensor], torch.Tensor]
U = TypeVar("U")


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
