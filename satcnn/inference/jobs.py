"""What the runner does with one tile, per model task: segmentation or classification.

A ``TileJob`` is built once per run from the loaded model and the options. It knows the outputs
of a tile (suffixes), the tags that decide whether an existing output is current, the parameters
to record, and how to compute a tile on the streaming engine. With ``vector``, a tile's raster
output is vectorised after it is published (``satcnn.vector``); a classifier's patch-sized tiles
(every tile with ``per_tile``) get one label each instead of a class map
(``satcnn.inference.per_tile``).
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Generator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import torch
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from torch import nn

from satcnn.errors import ModelError, RasterError, SatcnnError
from satcnn.inference.classify import ClassMapJob, class_fractions, class_fractions_of, classify
from satcnn.inference.engine import PredictStats, stream_raster
from satcnn.inference.input_rule import InputRule
from satcnn.inference.model_io import LoadedModel, SlidingPatchClassifier, StridedFCN
from satcnn.inference.options import InferenceOptions
from satcnn.inference.outputs import output_paths
from satcnn.inference.per_tile import Outcome, TileClassifier, TileRead, TileReader
from satcnn.inference.per_tile_records import folder_labels
from satcnn.inference.report import TileResult
from satcnn.inference.resolution import note_resolution
from satcnn.inference.segment import DEFAULT_NODATA, RoadOutput, SegmentationJob, mask_from_probability
from satcnn.inference.window_plan import Model, RasterJob, StreamSettings
from satcnn.inference.windows import axis_spans, default_batch_size, default_window
from satcnn.io.notes import note
from satcnn.io.output_tags import OutputTags, RunTags, VectorTags, stale_reason
from satcnn.io.raster import RasterInfo, open_dataset
from satcnn.io.remote import source_key, source_version

logger = logging.getLogger(__name__)

__all__ = ["ClassificationTiles", "SegmentationTiles", "TileJob", "tile_job"]


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


def _settings(lm: LoadedModel, options: InferenceOptions, device: str, run: RunTags) -> StreamSettings:
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


class SegmentationTiles(TileJob):
    """Road models: a probability or mask COG per tile, or both (the mask thresholded from it)."""

    def __init__(self, lm: LoadedModel, options: InferenceOptions, device: str, run: RunTags) -> None:
        super().__init__(lm.resolution_m)
        m = lm.size_multiple
        win = options.window or default_window(device, lm.patch_size, m)
        axis_spans(win, win, options.margin, m)  # the window against the model, before any compute
        batch = options.batch_size or default_batch_size(device)
        both = options.output_type == "both"
        kind = cast(RoadOutput, "prob_uint8" if both else options.output_type)
        self.module = lm.module
        self.threshold = options.threshold
        self.allow_no_crs = options.allow_no_crs
        self.job = SegmentationJob(
            window=win,
            margin=options.margin,
            batch_size=batch,
            size_multiple=m,
            output=kind,
            threshold=options.threshold,
            nodata=DEFAULT_NODATA[kind],
            logits=True,
            min_size=None,  # a raster smaller than the training patch is one zero-filled window
            tta=options.tta,
        )
        self.settings = _settings(lm, options, device, run)
        prob = OutputTags(kind, options.tta, run=run)
        mask = OutputTags("mask", options.tta, options.threshold, run=run)
        self.suffixes = ["", "_mask"] if both else [""]
        self.roles = ["probability", "mask"] if both else ["mask" if kind == "mask" else "probability"]
        self.expected = [prob, mask] if both else [mask if kind == "mask" else prob]
        self.vector = options.vector
        if self.vector:
            self.suffixes.append("_roads.gpkg")
            self.roles.append("road graph")
            self.expected.append(VectorTags(options.threshold))  # a new threshold redoes the lines
        self.both = both
        self.classes = []
        self.params = {
            "window": win,
            "margin": options.margin,
            "batch_size": batch,
            "output": options.output_type,
            "threshold": options.threshold,
            "tta": options.tta,
            "vector": options.vector,
        }

    @property
    def raster(self) -> RasterJob:
        return self.job

    @property
    def model(self) -> Model:
        return self.module

    def process(self, src: Path, outs: list[Path]) -> TileResult:
        stats, _ = stream_raster(self.module, src, outs[0], self.job, self.settings, self.version_of(src))
        return self.finish(src, outs, stats)

    def finish(
        self, src: Path, outs: list[Path], stats: PredictStats, counts: dict[str, int] | None = None
    ) -> TileResult:
        self._note_crs(stats.georeferenced, src)
        self._note_resolution(src)
        t = time.perf_counter()
        if self.both:
            mask_from_probability(outs[0], outs[1], self.threshold)
        if self.vector:
            from satcnn.vector import vectorize_roads

            vectorize_roads(
                outs[0], outs[-1], threshold=self.threshold, progress=False, allow_no_crs=self.allow_no_crs
            )
        return TileResult(src, outs, "done", stats.pixels, stats.seconds + time.perf_counter() - t)


def _scorer(lm: LoadedModel, patch: int, stride: int) -> nn.Module:
    """A dense scorer for class maps: the FCN (subsampled to ``stride``) or a patch slider."""
    inner = lm.module.model
    if inner.fully_convolutional and stride % inner.output_stride == 0:
        return StridedFCN(lm.module.as_fully_convolutional(), stride // inner.output_stride).eval()
    logger.info(
        "classifying %d x %d patches one by one (no fully convolutional form at stride %d)",
        patch,
        patch,
        stride,
    )
    return SlidingPatchClassifier(lm.module, patch, stride).eval()


class ClassificationTiles(TileJob):
    """Classifiers: a class-map COG per tile and its class fractions, or one label per patch-sized tile."""

    def __init__(self, lm: LoadedModel, options: InferenceOptions, device: str, run: RunTags) -> None:
        super().__init__(lm.resolution_m)
        patch = lm.patch_size  # recorded, or the model's own (load_model)
        if not patch:
            raise ModelError("the classifier checkpoint records no patch_size", lm.path)
        if not lm.classes:
            raise ModelError("the classifier checkpoint records no class names", lm.path)
        stride = options.stride or int(patch)
        self.classes = lm.classes
        self.scorer = _scorer(lm, int(patch), stride)
        self.job = ClassMapJob(int(patch), tuple(lm.classes), stride, options.block, tta=options.tta)
        self.settings = _settings(lm, options, device, run)
        self.suffixes, self.roles = [""], ["class map"]
        self.expected = [OutputTags("class_map", options.tta, stride=stride, run=run)]
        self.vector = options.vector
        if self.vector:
            self.suffixes.append("_classes.gpkg")
            self.roles.append("class polygons")
            self.expected.append(None)
        self.patch, self.per_tile = int(patch), options.per_tile
        self.tiles = TileClassifier(
            self.scorer,
            lm.classes,
            TileReader(
                int(patch),
                len(lm.bands),
                tuple(self.settings.dtypes) if self.settings.dtypes else None,
                require_crs=not options.allow_no_crs,
                rule=self.settings.inputs,
            ),
            stride,
            torch.device(device),
            options.precision,
            options.tta,
        )
        self.labels = folder_labels(options.input_specs, lm.classes)
        self.out_dir, self.overwrite = options.out_dir, options.overwrite
        self._patch_sized: dict[str, bool] = {}
        self.params = {
            "stride": stride,
            "patch_size": int(patch),
            "block": options.block,
            "tta": options.tta,
            "per_tile": options.per_tile,
            "vector": options.vector,
        }

    def gets_label(self, src: Path) -> bool:
        """Whether ``src`` gets one label (``per_tile``, or a tile of the patch size) instead of a map."""
        if self.per_tile:
            return True
        key = os.path.abspath(src)
        if key not in self._patch_sized and self._current_remote_map(src):
            self._patch_sized[key] = False  # its class map is current: no need to read the header
        if key not in self._patch_sized:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", NotGeoreferencedWarning)
                    with open_dataset(src) as ds:
                        self._patch_sized[key] = ds.height == ds.width == self.patch
            except (RasterioError, RasterError):  # the class-map path reports it, naming the file
                self._patch_sized[key] = False
        return self._patch_sized[key]

    def _current_remote_map(self, src: Path) -> bool:
        """Whether ``src`` is remote and its class map (keyed on its version) is current."""
        if self.overwrite or source_key(src) is None:
            return False
        outs = super().outputs(src, self.out_dir)
        expected = self.expected_for(src)  # quiet: the runner logs why a stale one is redone
        return all(o.exists() for o in outs) and not any(map(stale_reason, outs, expected))

    def outputs(self, src: Path, out_dir: Path) -> list[Path]:
        return [] if self.gets_label(src) else super().outputs(src, out_dir)

    def writing(self, inputs: Sequence[Path]) -> list[Path]:
        return [] if self.per_tile else [p for p in inputs if not self.gets_label(p)]

    def process(self, src: Path, outs: list[Path]) -> TileResult:
        if self.gets_label(src):
            return self._label(src)
        stats = classify(self.scorer, src, outs[0], self.job, self.settings, self.version_of(src))
        return self.finish(src, outs, stats, stats.class_counts)

    @property
    def raster(self) -> RasterJob:
        return self.job

    @property
    def model(self) -> Model:
        return self.scorer

    def finish(
        self, src: Path, outs: list[Path], stats: PredictStats, counts: dict[str, int] | None = None
    ) -> TileResult:
        self._note_crs(stats.georeferenced, src)
        self._note_resolution(src)
        fractions = class_fractions(counts or {})
        seconds = stats.seconds
        if self.vector:
            from satcnn.vector import vectorize_classes

            t = time.perf_counter()
            vectorize_classes(outs[0], outs[-1], classes=self.classes, progress=False)
            seconds += time.perf_counter() - t
        return TileResult(src, outs, "done", stats.pixels, seconds, class_fractions=fractions)

    def _label(self, src: Path) -> TileResult:
        ((_, outcome),) = self.process_many([src])
        if isinstance(outcome, SatcnnError):
            raise outcome
        return outcome

    def batched(self, src: Path) -> bool:
        return self.gets_label(src)

    def process_many(
        self, srcs: Sequence[Path]
    ) -> Generator[tuple[Path, TileResult | SatcnnError], None, None]:
        """One label per tile, read ahead and classified in batches (``TileClassifier.stream``)."""
        assert self.tiles is not None
        t = time.perf_counter()
        for read, outcome in self.tiles.stream(srcs):
            now = time.perf_counter()
            yield read.src, self.labelled(read, outcome, now - t)  # its share: readers work ahead
            t = now

    def labelled(self, read: TileRead, outcome: Outcome, seconds: float) -> TileResult | SatcnnError:
        """The result of a tile given one label (``outcome``: its probabilities or its problem)."""
        if isinstance(outcome, SatcnnError):
            return outcome
        assert read.info is not None
        self._note_crs(read.info.crs is not None, read.src)
        self._note_resolution(read.src, read.info)
        return TileResult(
            read.src,
            [],
            "done",
            read.info.width * read.info.height,
            seconds,
            label=self.labels.get(os.path.abspath(read.src)),
            probabilities=outcome,
        )

    def skipped(self, src: Path, outs: list[Path]) -> TileResult:
        return TileResult(src, outs, "skipped", class_fractions=class_fractions_of(outs[0], self.classes))


def _joined(value: str | Sequence[str | int]) -> str:
    return value if isinstance(value, str) else ",".join(map(str, value))


def tile_job(lm: LoadedModel, options: InferenceOptions, device: str, digest: str) -> TileJob:
    """The per-tile work of ``lm``'s task; the outputs are tagged with the model's identity.

    Raises:
        ModelError: A classifier checkpoint lacks its patch size or class names.
        ConfigError: The window does not suit the model (size multiple, margin).
    """
    # how the input was read is tagged too, the default selection and the strict rule included, so a
    # rerun with or without --bands/--rescale never keeps an output read the other way; outputs read
    # with other bands, another rescale or at another precision are recomputed on a rerun
    run = RunTags(
        model=lm.uri,
        model_digest=digest,
        precision=options.precision,
        model_version=f"{lm.registered['name']}/{lm.registered['version']}" if lm.registered else None,
        bands=_joined(options.bands or "auto"),
        rescale=options.rescale or "strict",
    )
    job: TileJob
    if lm.task == "classification":
        job = ClassificationTiles(lm, options, device, run)
    else:
        job = SegmentationTiles(lm, options, device, run)
    job.params.update({"bands": run.bands, "rescale": run.rescale})
    return job
