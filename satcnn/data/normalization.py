"""Streaming per-band mean and standard deviation.

Both DataModules compute band statistics over more pixels than fit in memory, so the
statistics are accumulated chunk by chunk with Chan et al.'s parallel update of the count,
mean and sum of squared deviations (M2), in float64. Merging two partial results is exact
up to rounding, which also lets workers or ranks compute shares and combine them.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from satcnn.checks import require_at_least

logger = logging.getLogger(__name__)

__all__ = ["RunningStats"]


class RunningStats:
    """Per-band running mean and (population) standard deviation.

    Args:
        num_bands: number of bands (channels) ``C`` of the arrays passed to :meth:`update`.

    Example:
        >>> stats = RunningStats(4)
        >>> for chunk in chunks:  # (N, 4, H, W) or (4, H, W)
        ...     stats.update(chunk)
        >>> stats.mean, stats.std
    """

    def __init__(self, num_bands: int) -> None:
        require_at_least("num_bands", num_bands, 1)
        self.num_bands = num_bands
        self.count = 0
        self._mean = np.zeros(num_bands, dtype=np.float64)
        self._m2 = np.zeros(num_bands, dtype=np.float64)

    def update(self, array: np.ndarray[Any, Any] | torch.Tensor) -> None:
        """Add the pixels of one chunk.

        Args:
            array: ``(C, H, W)`` or ``(N, C, H, W)`` values (any real dtype; a torch tensor
                is moved to the CPU).

        Raises:
            ValueError: the array is not 3-D or 4-D or its band axis is not ``num_bands`` long.
        """
        arr = array.detach().cpu().numpy() if isinstance(array, torch.Tensor) else np.asarray(array)
        if arr.ndim == 3:
            arr = arr[None]
        if arr.ndim != 4 or arr.shape[1] != self.num_bands:
            raise ValueError(
                f"expected an array of shape (C, H, W) or (N, C, H, W) with C={self.num_bands}, "
                f"got shape {tuple(np.shape(array))}"
            )
        flat = np.moveaxis(arr, 1, 0).reshape(self.num_bands, -1)
        n = flat.shape[1]
        if n == 0:
            return
        mean = flat.mean(axis=1, dtype=np.float64)
        m2 = np.empty(self.num_bands, dtype=np.float64)
        for b in range(self.num_bands):  # one band at a time bounds the float64 copy to one band
            dev = flat[b].astype(np.float64) - mean[b]
            m2[b] = float(np.dot(dev, dev))
        self._merge(n, mean, m2)

    def merge(self, other: RunningStats) -> None:
        """Fold the statistics of ``other`` (same band count) into this one."""
        if other.num_bands != self.num_bands:
            raise ValueError(f"cannot merge stats of {other.num_bands} bands into {self.num_bands} bands")
        if other.count:
            self._merge(other.count, other._mean, other._m2)

    def _merge(self, n_b: int, mean_b: np.ndarray[Any, Any], m2_b: np.ndarray[Any, Any]) -> None:
        n_a = self.count
        n = n_a + n_b
        delta = mean_b - self._mean
        self._mean = self._mean + delta * (n_b / n)
        self._m2 = self._m2 + m2_b + delta**2 * (n_a * n_b / n)
        self.count = n

    @property
    def mean(self) -> np.ndarray[Any, Any]:
        """Per-band mean, float64 of shape ``(C,)``.

        Raises:
            ValueError: no pixels were added yet.
        """
        self._require_data()
        return self._mean.copy()

    @property
    def std(self) -> np.ndarray[Any, Any]:
        """Per-band population standard deviation (ddof=0), float64 of shape ``(C,)``."""
        self._require_data()
        return np.sqrt(np.maximum(self._m2 / self.count, 0.0))

    def _require_data(self) -> None:
        if self.count == 0:
            raise ValueError("RunningStats has no data: call update() with at least one pixel first")

    def __repr__(self) -> str:
        return f"RunningStats(num_bands={self.num_bands}, count={self.count})"
