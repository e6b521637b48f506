"""The steps that the local streaming engine and the Ray engine share around the model.

``compute_batch`` runs a plan's compute on the windows of a batch that hold a valid pixel (on the
device, under ``torch.inference_mode`` and the run's precision); ``output_writer`` makes the
atomic COG writer of a plan's output, with its tags.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from satcnn.inference.device import autocast, sync
from satcnn.inference.window_plan import Model, StreamSettings, WindowPlan
from satcnn.io.cog import AtomicCOGWriter
from satcnn.io.remote import source_key

__all__ = ["compute_batch", "output_writer"]


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
