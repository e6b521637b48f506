"""Classification's per-tile work: a class-map COG per tile and its class fractions, or one label each.

A classifier's patch-sized tiles (every tile with ``per_tile``) get one label each instead of a
class map (``satcnn.inference.per_tile``). With ``vector``, a class map is vectorised into class
polygons after it is published (``satcnn.vector``).
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Generator, Sequence
from pathlib import Path

import torch
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from torch import nn

from satcnn.errors import ModelError, RasterError, SatcnnError
from satcnn.inference.classify import ClassMapJob, class_fractions, class_fractions_of, classify
from satcnn.inference.engine import PredictStats
from satcnn.inference.model_io import LoadedModel, SlidingPatchClassifier, StridedFCN
from satcnn.inference.options import InferenceOptions
from satcnn.inference.per_tile import Outcome, TileClassifier, TileRead, TileReader
from satcnn.inference.per_tile_records import folder_labels
from satcnn.inference.report import TileResult
from satcnn.inference.tile_job import TileJob, stream_settings
from satcnn.inference.window_plan import Model, RasterJob
from satcnn.io.output_tags import OutputTags, RunTags, stale_reason
from satcnn.io.raster import open_dataset
from satcnn.io.remote import source_key

logger = logging.getLogger(__name__)

__all__ = ["ClassificationTiles"]


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
        self.settings = stream_settings(lm, options, device, run)
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
