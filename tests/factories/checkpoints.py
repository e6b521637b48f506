"""Checkpoints per the contract (``save_checkpoint``) with seeded weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from satcnn.models import create_model
from satcnn.models.checkpoint import CheckpointMeta, ModelSpec, save_checkpoint

CLASSES = ["building", "barren", "trees", "grassland", "road", "water"]


def write_checkpoint(
    path: Path,
    *,
    name: str = "deepsat_cnn",
    kwargs: dict[str, Any] | None = None,
    task: str = "classification",
    bands: list[str] | None = None,
    classes: list[str] | None = None,
    patch_size: int = 28,
    input_dtype: str = "uint8",
    mean: list[float] | None = None,
    std: list[float] | None = None,
    seed: int = 0,
) -> Path:
    """A checkpoint per the contract (``save_checkpoint``), with seeded weights."""
    kwargs = kwargs if kwargs is not None else {"in_channels": 4, "num_classes": 6}
    bands = bands or ["red", "green", "blue", "nir"]
    torch.manual_seed(seed)
    model = create_model(name, **kwargs)
    # non-trivial BN statistics so that eval-mode normalisation matters
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            assert m.running_mean is not None and m.running_var is not None
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    meta = CheckpointMeta(
        task=task,  # type: ignore[arg-type]
        model=ModelSpec(name, kwargs),
        bands=bands,
        mean=mean or [100.0 + 10 * i for i in range(len(bands))],
        std=std or [40.0 + 5 * i for i in range(len(bands))],
        classes=classes or (CLASSES if task == "classification" else ["background", "road"]),
        patch_size=patch_size,
        input_dtype=input_dtype,
    )
    return save_checkpoint(path, model, meta, extra={"epoch": 1})


def pan_road_checkpoint(path: Path, *, base_filters: int = 4, patch_size: int = 64) -> Path:
    """A tiny single-band (``pan``, uint16) U-Net road checkpoint for the SpaceNet Vegas tile."""
    return write_checkpoint(
        path,
        name="unet",
        kwargs={"in_channels": 1, "num_classes": 1, "base_filters": base_filters, "depth": 2},
        task="segmentation",
        bands=["pan"],
        patch_size=patch_size,
        input_dtype="uint16",
        mean=[400.0],
        std=[150.0],
    )
