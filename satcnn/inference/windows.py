"""Window grid for tiled inference: the grid of :mod:`satcnn.io.grid`, and the default window and batch.

The grid rule (window count, owned cores, placement) lives in :mod:`satcnn.io.grid`, shared with
the validation/test sampler; this module re-exports its inference API and adds the inference
policy of how large a window, and how many windows a batch, may be by default.
"""

from __future__ import annotations

import torch

from satcnn.io.grid import Tile, axis_spans, computed_ratio, fit_window, tile_grid

__all__ = [
    "CPU_BATCH",
    "CPU_WINDOW",
    "CUDA_BATCH",
    "CUDA_WINDOW",
    "Tile",
    "axis_spans",
    "computed_ratio",
    "default_batch_size",
    "default_window",
    "fit_window",
    "tile_grid",
]

CPU_WINDOW = 1088
"""Default largest window side on CPU: with the default margin of 32 and a ``size_multiple`` of 8
(the paper ResUNet) it keeps the computed pixels within 1.15x the raster's for every raster of
2048 px a side or more (:func:`computed_ratio`), where a 512 window computes about 1.3x. Windows
are fitted to the raster, so large rasters get windows of 1056-1072 px."""

CPU_BATCH = 1
"""Default windows per forward pass on CPU. Memory grows with the pixels of a batch (the paper
ResUNet needs about 3.4 GB per megapixel, ``bench/bench_window_memory.py``), and on CPU a larger
batch of such windows is no faster: one 1088 px window (1.2 MP, about 4 GB) instead of the
former four of 512 px (1.05 MP)."""

CUDA_BATCH = 4
"""Default windows per forward pass on CUDA."""

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


def default_batch_size(device: str | torch.device) -> int:
    """Windows per forward pass used when none is given: :data:`CUDA_BATCH` or :data:`CPU_BATCH`."""
    return CUDA_BATCH if torch.device(device).type == "cuda" else CPU_BATCH
