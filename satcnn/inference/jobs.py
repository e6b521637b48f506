"""The per-tile work of a run for the model's task: ``tile_job`` picks segmentation or classification.

A ``TileJob`` (``satcnn.inference.tile_job``) is built once per run from the loaded model and the
options: ``SegmentationTiles`` (``satcnn.inference.segmentation_tiles``) for road models,
``ClassificationTiles`` (``satcnn.inference.classification_tiles``) for classifiers. All three are
re-exported here, where the runner and the Ray engine import them.
"""

from __future__ import annotations

from collections.abc import Sequence

from satcnn.inference.classification_tiles import ClassificationTiles
from satcnn.inference.model_io import LoadedModel
from satcnn.inference.options import InferenceOptions
from satcnn.inference.segmentation_tiles import SegmentationTiles
from satcnn.inference.tile_job import TileJob
from satcnn.io.output_tags import RunTags

__all__ = ["ClassificationTiles", "SegmentationTiles", "TileJob", "tile_job"]


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
