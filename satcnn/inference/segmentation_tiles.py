"""Segmentation's per-tile work: a road model's probability or mask COG per tile, or both.

With ``vector``, a tile's raster output is vectorised into a road graph after it is published
(``satcnn.vector``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import cast

from satcnn.inference.engine import PredictStats, stream_raster
from satcnn.inference.model_io import LoadedModel
from satcnn.inference.options import InferenceOptions
from satcnn.inference.report import TileResult
from satcnn.inference.segment import DEFAULT_NODATA, RoadOutput, SegmentationJob, mask_from_probability
from satcnn.inference.tile_job import TileJob, stream_settings
from satcnn.inference.window_plan import Model, RasterJob
from satcnn.inference.windows import axis_spans, default_batch_size, default_window
from satcnn.io.output_tags import OutputTags, RunTags, VectorTags

__all__ = ["SegmentationTiles"]


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
        self.settings = stream_settings(lm, options, device, run)
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
