"""Window samplers over pixel regions of scenes, sharded across DDP ranks.

A sampler yields :class:`WindowRef` (scene index, pixel offsets, size, augmentation seed);
the scene dataset turns each into a window read. This follows torchgeo's sampler design
(the sampler owns "where", the dataset owns "read") but in integer pixels of each scene's
own grid instead of CRS coordinates, so no read ever resamples or merges.

DDP: torchgeo samplers have no ``set_epoch`` and Lightning would wrap them in a
``DistributedSamplerWrapper``. Ours subclass :class:`torch.utils.data.DistributedSampler`:
Lightning 2.6 injects its own sampler only when ``not isinstance(dataloader.sampler,
DistributedSampler)`` (``DataConnector._requires_distributed_sampler``), so these are left
alone with ``use_distributed_sampler=True`` (the default), and the fit loop calls their
``set_epoch`` every epoch. Each epoch the full (global) list of windows is drawn from
``seed`` and ``epoch`` alone, identical on every rank, and rank ``r`` takes ``[r::world]``:
shares are disjoint and change every epoch. World size and rank come from
``torch.distributed`` when it is initialised at iteration time (single process otherwise).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch.distributed as dist
from torch.utils.data import DistributedSampler

from satcnn.checks import require_at_least, require_in_range
from satcnn.io.grid import axis_windows

logger = logging.getLogger(__name__)

__all__ = [
    "NOTHING_OWNED",
    "GridWindowSampler",
    "RandomWindowSampler",
    "Region",
    "WindowRef",
]


@dataclass(frozen=True)
class Region:
    """A pixel rectangle of one scene that windows are drawn from."""

    scene: int
    row_off: int
    col_off: int
    height: int
    width: int


class WindowRef(NamedTuple):
    """One square window: scene index, top-left pixel, size, and a per-sample augmentation seed.

    ``owned`` (grid windows only) is ``(row_start, row_stop, col_start, col_stop)`` relative to
    the window: the pixels this window alone accounts for in evaluation, so that the owned
    parts of a grid tile its regions exactly once. ``None`` for random (training) windows;
    :data:`NOTHING_OWNED` for the repeated windows that pad a DDP shard.
    """

    scene: int
    row_off: int
    col_off: int
    size: int
    seed: int = 0
    owned: tuple[int, int, int, int] | None = None


NOTHING_OWNED = (0, 0, 0, 0)
"""``WindowRef.owned`` of a padding duplicate: it owns no pixel."""


def _world(num_replicas: int | None, rank: int | None) -> tuple[int, int]:
    if num_replicas is not None:
        return num_replicas, rank if rank is not None else 0
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


class _ShardedWindowSampler(DistributedSampler[WindowRef]):
    """Base: shards the epoch's global window list ``[rank::world]``; subclasses draw the list."""

    def __init__(
        self,
        regions: Sequence[Region],
        patch_size: int,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
    ) -> None:
        if not regions:
            raise ValueError("a window sampler needs at least one region")
        for region in regions:
            if patch_size > region.height or patch_size > region.width:
                raise ValueError(
                    f"patch size {patch_size} does not fit region {region.height}x{region.width} "
                    f"of scene {region.scene}"
                )
        self.regions = list(regions)
        self.patch_size = patch_size
        self._num_replicas_arg = num_replicas
        self._rank_arg = rank
        world, r = _world(num_replicas, rank)
        # DistributedSampler.__init__ would query an initialised process group; set its fields directly.
        self.num_replicas = world
        self.rank = r
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self.drop_last = False

    def _refresh_world(self) -> None:
        self.num_replicas, self.rank = _world(self._num_replicas_arg, self._rank_arg)
        require_in_range("rank", self.rank, 0, self.num_replicas, high_open=True, high_name="num_replicas")

    def _global_windows(self) -> list[WindowRef]:
        raise NotImplementedError

    def _pad(self, ref: WindowRef) -> WindowRef:
        """The repeat of ``ref`` that pads a shard (owning nothing when ``ref`` owns pixels)."""
        return ref if ref.owned is None else ref._replace(owned=NOTHING_OWNED)

    def _num_global(self) -> int:
        raise NotImplementedError

    def __len__(self) -> int:
        self._refresh_world()
        return math.ceil(self._num_global() / self.num_replicas)

    def __iter__(self) -> Iterator[WindowRef]:
        self._refresh_world()
        windows = self._global_windows()
        per_rank = math.ceil(len(windows) / self.num_replicas)
        total = per_rank * self.num_replicas
        # Pad by repeating the first windows (cycling when there are fewer windows than ranks),
        # as DistributedSampler does.
        windows = windows + [self._pad(windows[i % len(windows)]) for i in range(total - len(windows))]
        return iter(windows[self.rank : total : self.num_replicas])


class RandomWindowSampler(_ShardedWindowSampler):
    """Random square windows inside regions, redrawn every epoch.

    A region is chosen with probability proportional to its number of window positions
    (torchgeo's ``RandomGeoSampler`` weights tiles by area the same way), then a top-left
    pixel uniformly inside it.

    Args:
        regions: pixel regions to sample from.
        patch_size: window side in pixels.
        num_samples: windows per epoch over all ranks; each rank gets ``ceil(num_samples / world)``.
        num_replicas: world size (default: from ``torch.distributed``, else 1).
        rank: this process's rank (default: from ``torch.distributed``, else 0).
        seed: base seed; the epoch's windows depend on ``seed`` and ``epoch`` only.
    """

    def __init__(
        self,
        regions: Sequence[Region],
        patch_size: int,
        num_samples: int,
        num_replicas: int | None = None,
        rank: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(regions, patch_size, num_replicas, rank, shuffle=True, seed=seed)
        require_at_least("num_samples", num_samples, 1)
        self.num_samples_per_epoch = num_samples
        positions = np.array(
            [(r.height - patch_size + 1) * (r.width - patch_size + 1) for r in self.regions], dtype=np.float64
        )
        self._weights = positions / positions.sum()

    def _num_global(self) -> int:
        return self.num_samples_per_epoch

    def _global_windows(self) -> list[WindowRef]:
        rng = np.random.default_rng([self.seed, self.epoch])
        n = self.num_samples_per_epoch
        which = rng.choice(len(self.regions), size=n, p=self._weights)
        u = rng.random((n, 2))
        seeds = rng.integers(0, 2**31 - 1, size=n)
        size = self.patch_size
        out = []
        for k in range(n):
            reg = self.regions[int(which[k])]
            row = reg.row_off + int(u[k, 0] * (reg.height - size + 1))
            col = reg.col_off + int(u[k, 1] * (reg.width - size + 1))
            out.append(WindowRef(reg.scene, row, col, size, int(seeds[k])))
        return out


class GridWindowSampler(_ShardedWindowSampler):
    """A grid of overlapping windows covering every pixel of every region.

    The grid follows :mod:`satcnn.io.grid`, the rule tiled inference uses too: per axis, the
    fewest windows that overlap by about ``overlap``, each owning an even span and centred
    on it inside the region. A pixel is owned by the same window as in inference with window
    ``patch_size`` and margin ``overlap / 2``. Under DDP the grid is split ``[rank::world]``
    and padded by repeating its first windows so every rank runs the same number of steps
    (a few windows are then read twice, as with Lightning's own ``DistributedSampler``).

    Every window carries ``owned``: the owned parts of all windows, over all ranks, cover each
    region pixel exactly once, and padding repeats own nothing, so metrics restricted to owned
    pixels count every pixel once.

    Args:
        regions: pixel regions to cover.
        patch_size: window side in pixels.
        overlap: overlap of neighbouring windows, ``0 <= overlap < patch_size``: every owned
            pixel keeps ``overlap // 2`` pixels of context inside its window (or reaches the edge).
        num_replicas: world size (default: from ``torch.distributed``, else 1).
        rank: this process's rank (default: from ``torch.distributed``, else 0).
        shuffle: shuffle the grid every epoch (from ``seed`` and ``epoch``); off for evaluation.
        seed: base seed for shuffling and augmentation seeds.
    """

    def __init__(
        self,
        regions: Sequence[Region],
        patch_size: int,
        overlap: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__(regions, patch_size, num_replicas, rank, shuffle=shuffle, seed=seed)
        require_in_range("overlap", overlap, 0, patch_size, high_open=True, high_name="patch_size")
        self.overlap = overlap
        self._grid: list[WindowRef] = []
        for reg in self.regions:
            rows = axis_windows(reg.height, patch_size, overlap)
            cols = axis_windows(reg.width, patch_size, overlap)
            self._grid.extend(
                WindowRef(
                    reg.scene,
                    reg.row_off + r.start,
                    reg.col_off + c.start,
                    patch_size,
                    0,
                    (*r.owned, *c.owned),
                )
                for r in rows
                for c in cols
            )

    def _num_global(self) -> int:
        return len(self._grid)

    def _global_windows(self) -> list[WindowRef]:
        if not self.shuffle:
            return list(self._grid)
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(len(self._grid))
        seeds = rng.integers(0, 2**31 - 1, size=len(self._grid))
        return [self._grid[int(i)]._replace(seed=int(s)) for i, s in zip(order, seeds, strict=True)]
