"""A DeepSat split held whole in (GPU) memory as uint8, served a batch per index.

SAT-6 is 1.3 GB as uint8 (405,000 patches of 28 x 28 x 4), so a split fits in the memory of one
GPU. :class:`InMemoryPatches` copies the chosen patches once into a ``(N, 4, 28, 28)`` uint8
tensor on ``device``; a DataLoader with :func:`batch_loader` then asks for a whole batch of
indices at a time, so a batch costs one gather and one cast on the device instead of per-patch
Python calls, collation and a host-to-device copy. Augmentation (the 8 symmetries of a square:
flips and the transpose) is applied to the batch as tensor ops on the same device.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from satcnn.data.deepsat import Split
from satcnn.errors import ConfigError

log = logging.getLogger(__name__)

__all__ = ["InMemoryPatches", "batch_loader", "memory_device", "random_symmetry"]

Sample = dict[str, Any]


def memory_device(device: str) -> torch.device:
    """The device named by the DataModule's ``device`` option, checked once.

    Raises:
        ConfigError: Not a torch device name, or a CUDA device this machine does not have.
    """
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise ConfigError(f"device {device!r} is not a torch device (cpu, cuda, cuda:1): {err}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r}: CUDA is not available here; use device: cpu")
    return dev


def random_symmetry(images: torch.Tensor) -> torch.Tensor:
    """Each square image of ``(N, C, H, H)`` under one of the 8 symmetries of a square, drawn uniformly.

    A random horizontal flip, vertical flip and transpose, each with probability 1/2, give every
    element of the dihedral group with probability 1/8. Draws come from torch's generator of the
    images' device, so ``seed_everything`` makes them reproducible.
    """
    n = images.shape[0]
    draws = torch.rand((3, n, 1, 1, 1), device=images.device) < 0.5
    out = torch.where(draws[0], images.flip(-1), images)
    out = torch.where(draws[1], out.flip(-2), out)
    return torch.where(draws[2], out.transpose(-1, -2), out)


class InMemoryPatches(Dataset[Sample]):
    """The patches ``indices`` of ``split`` as one uint8 tensor on ``device``; an item is a batch.

    Args:
        split: The DeepSat split (images ``(N, 28, 28, 4)`` uint8, labels ``(N,)``).
        indices: Positions of the patches to hold, in the order they are served.
        device: Where the tensor lives (``cpu``, ``cuda``...).
        augment: Random symmetries on every batch served.
        chunk: Patches copied per step while loading (bounds the host memory of the copy).
    """

    def __init__(
        self,
        split: Split,
        indices: np.ndarray,
        device: torch.device,
        augment: bool = False,
        chunk: int = 16384,
    ) -> None:
        self.augment = augment
        self.images = torch.empty((len(indices), 4, 28, 28), dtype=torch.uint8, device=device)
        for start in range(0, len(indices), chunk):
            part = np.asarray(split.images[indices[start : start + chunk]], dtype=np.uint8)
            block = torch.from_numpy(np.ascontiguousarray(part.transpose(0, 3, 1, 2)))
            self.images[start : start + len(part)] = block.to(device)
        self.labels = torch.as_tensor(np.asarray(split.labels)[indices], dtype=torch.int64, device=device)
        log.info("%d patches in %s memory (%.0f MB as uint8)", len(indices), device, self.images.nbytes / 1e6)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, batch: Sequence[int]) -> Sample:
        """The batch of positions ``batch``: ``{"image": float32 (B, 4, 28, 28) raw DN, "label"}``."""
        idx = torch.as_tensor(batch, dtype=torch.int64, device=self.images.device)
        images = self.images[idx]
        if self.augment:
            images = random_symmetry(images)
        return {"image": images.float(), "label": self.labels[idx]}


def batch_loader(patches: InMemoryPatches, batch_size: int, shuffle: bool) -> DataLoader[Sample]:
    """A DataLoader that fetches whole batches from ``patches`` in the main process.

    The sampler yields lists of positions and ``batch_size=None`` turns off collation, so each
    batch is one :meth:`InMemoryPatches.__getitem__` call (no workers: the data is in memory).
    """
    order = RandomSampler(patches) if shuffle else SequentialSampler(patches)
    return DataLoader(
        patches,
        sampler=BatchSampler(order, batch_size, drop_last=False),  # type: ignore[arg-type]
        batch_size=None,
        num_workers=0,
    )
