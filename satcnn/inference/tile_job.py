"""The per-tile work of a run, whatever the model's task: the ``TileJob`` base and its engine settings.

A ``TileJob`` is built once per run from the loaded model and the options (``satcnn.inference.jobs``
picks the task's). It knows the outputs of a tile (suffixes), the tags that decide whether an
existing output is current, the parameters to record, and how to compute a tile on the streaming
engine. ``stream_settings`` gives the engine's settings of a run's rasters, the input rule included.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Generator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from satcnn.errors import SatcnnError
from satcnn.inference.engine import PredictStats
from satcnn.inference.input_rule import InputRule
from satcnn.inference.model_io import LoadedModel
from satcnn.inference.options import InferenceOptions
from satcnn.inference.outputs import output_paths
from satcnn.inference.per_tile import TileClassifier
from satcnn.inference.report import TileResult
from satcnn.inference.resolution import note_resolution
from satcnn.inference.window_plan import Model, RasterJob, StreamSettings
from satcnn.io.notes import note
from satcnn.io.output_tags import OutputTags, RunTags, VectorTags
from satcnn.io.raster import RasterInfo
from satcnn.io.remote import source_key, source_version

__all__ = ["TileJob", "stream_settings"]


class TileJob(ABC):
    """One run's per-tile work.

    Attributes:
        suffixes: Output name suffixes of a tile (``<stem><suffix>.tif``).
        roles: What each output is, for messages.
        expected: Per output, the tags an existing file must answer to be kept on a rerun
            (``OutputTags.decisive``); road vectors' threshold (``VectorTags``); ``None`` for
            class polygons, which follow their class map.
        params: Settings to record in the manifest and the MLflow run.
        classes: Class names whose fractions are recorded (classifiers), else empty.
        settings: The streaming engine's settings of the run's rasters.
    """

    settings: StreamSettings
    suffixes: list[str]
    roles: list[str]
    expected: list[OutputTags | VectorTags | None]
    params: dict[str, Any]
    classes: list[str]
    tiles: TileClassifier | None = None
    """Gives tiles one label each (classifiers); ``batched`` tiles go to it."""

    def __init__(self, resolution_m: float | None = None) -> None:
        self._versions: dict[str, str | None] = {}  # remote inputs' versions, asked once a run
        self.resolution_m = resolution_m  # the model's training resolution, when its card has one

    def outputs(self, src: Path, out_dir: Path) -> list[Path]:
        """The output files of ``src`` (none for a tile that gets one label)."""
        return output_paths(src, out_dir, self.suffixes)

    def writing(self, inputs: Sequence[Path]) -> list[Path]:
        """The inputs that write output files (whose names must not collide)."""
        return list(inputs)

    def version_of(self, src: Path) -> str | None:
        """A remote input's version (``satcnn.io.remote.source_version``: one request, kept for the
        run once answered, asked before its bytes are read); ``None`` for a local file."""
        key = source_key(src)
        if key is None:
            return None
        if self._versions.get(key) is None:  # not asked yet, or not answered (asked again)
            self._versions[key] = source_version(src)
        return self._versions[key]

    def expected_for(self, src: Path) -> list[OutputTags | VectorTags | None]:
        """``expected`` for the outputs of ``src``: a remote input's are also keyed on its href and
        on its version (``version_of``)."""
        key = source_key(src)
        if key is None:
            return list(self.expected)
        version = self.version_of(src)
        return [
            replace(e, source_href=key, source_version=version) if isinstance(e, OutputTags) else e
            for e in self.expected
        ]

    def _note_resolution(self, src: Path, info: RasterInfo | None = None) -> None:
        """Note an input far from the model's training resolution (``note_resolution``)."""
        if self.resolution_m is not None:
            note_resolution(src, self.resolution_m, info)

    def _note_crs(self, georeferenced: bool, src: Path) -> None:
        """Note (once per run for all such inputs) that an input without a CRS gets outputs without one."""
        if not georeferenced:
            note(
                src, "has no CRS: outputs are written on the input's pixel grid without a CRS (allow_no_crs)"
            )

    @abstractmethod
    def process(self, src: Path, outs: list[Path]) -> TileResult:
        """Compute the outputs ``outs`` of ``src``."""

    @property
    @abstractmethod
    def raster(self) -> RasterJob:
        """What the streaming engine computes for a tile's first output (its window plan)."""

    @property
    @abstractmethod
    def model(self) -> Model:
        """The model the plan's windows go through."""

    @abstractmethod
    def finish(
        self, src: Path, outs: list[Path], stats: PredictStats, counts: dict[str, int] | None = None
    ) -> TileResult:
        """The result of ``src`` once its first output is published: its derived outputs written
        (the mask of ``both``, vectors), ``counts`` its class pixels (class maps)."""

    def batched(self, src: Path) -> bool:
        """Whether ``src`` is computed with its neighbours in batches (``process_many``)."""
        return False

    def process_many(
        self, srcs: Sequence[Path]
    ) -> Generator[tuple[Path, TileResult | SatcnnError], None, None]:
        """Compute ``srcs`` (all ``batched``), in order: each one's result or its problem."""
        raise NotImplementedError

    def skipped(self, src: Path, outs: list[Path]) -> TileResult:
        """The result of a tile whose outputs are current."""
        return TileResult(src, outs, "skipped")


def stream_settings(lm: LoadedModel, options: InferenceOptions, device: str, run: RunTags) -> StreamSettings:
    """The streaming engine's settings of a run's rasters: device, precision, input checks and rule."""
    return StreamSettings(
        device=torch.device(device),
        precision=options.precision,
        compile=options.compile,
        progress=options.progress,
        bands=len(lm.bands),
        dtypes=[lm.input_dtype] if lm.input_dtype else None,
        run=run,
        inputs=_input_rule(lm, options),
        require_crs=not options.allow_no_crs,
    )


def _input_rule(lm: LoadedModel, options: InferenceOptions) -> InputRule:
    record = lm.record
    return InputRule.of(
        record.bands,
        record.mean,
        record.std,
        sources=record.band_sources,
        dtype=record.input_dtype,
        percentiles=record.percentiles,
        spec=options.band_spec,
        rescale=options.rescale_rule,
    )
