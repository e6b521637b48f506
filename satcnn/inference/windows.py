"""Window grid for tiled inference: the grid of :mod:`satcnn.io.grid`, and the default window side.

The grid rule (window count, owned cores, placement) lives in :mod:`satcnn.io.grid`, shared with
the validation/test sampler; this module re-exports its inference API and adds the inference
policy of how large a window may be by default.
"""

from __future__ import annotations

import torch

from satcnn.io.grid import Tile, axis_spans, computed_ratio, fit_window, tile_grid

__all__ = [
    "CPU_WINDOW",
    "CUDA_WINDOW",
    "Tile",
    "axis_spans",
    "computed_ratio",
    "default_window",
    "fit_window",
    "tile_grid",
]

CPU_WINDOW = 512
"""Default largest window side on CPU (keeps a ResUNet batch of 4 within a few GB of RAM)."""

CUDA_WINDOW = 1536
"""Default largest window side on CUDA: with the default margin of 32 it keeps the computed pixels
within 1.15x the raster's for every raster of 2048 px a side or more (:func:`computed_ratio`)."""


def default_window(device: str | torch.device, patch_size: int | None, size_multiple: int = 1) -> int:
    """Largest window side used when none is given: per device, never below the training patch.

    Args:
        device: Torch device the model runs on (``cuda`` devices get :data:`CUDA_WINDOW`).
        patch_size: The model's training patch size, if known.
        size_multiple: The result is rounded up to a multiple of this.
    """
    base = CUDA_WINDOW if torch.device(device).type == "cuda" else CPU_WINDOW
    side = max(patch_size or 0, base)
    return -(-side // size_multiple) * size_multiple
