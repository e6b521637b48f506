"""LightningDataModule for the DeepSat SAT-4 / SAT-6 patch datasets."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any, Literal

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from satcnn.checks import require_at_least, require_in_range
from satcnn.data.deepsat import BANDS, DeepSatSplits, Format, Split, read_deepsat
from satcnn.data.deepsat_memory import InMemoryPatches, batch_loader, memory_device
from satcnn.data.normalization import RunningStats
from satcnn.data.protocol import ClassData, DataRoot

log = logging.getLogger(__name__)

Sample = dict[str, Any]


class DeepSatDataset(Dataset[Sample]):
    """Patches of one split as ``{"image": float32 (4, 28, 28) raw DN, "label": int64}``."""

    def __init__(
        self, split: Split, indices: np.ndarray, transform: Callable[[Sample], Sample] | None = None
    ) -> None:
        self.split = split
        self.indices = indices
        self.transform = transform

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> Sample:
        i = int(self.indices[index])
        image = np.ascontiguousarray(np.asarray(self.split.images[i]).transpose(2, 0, 1))
        sample: Sample = {"image": torch.from_numpy(image).float(), "label": int(self.split.labels[i])}
        if self.transform is not None:
            sample = self.transform(sample)
        return sample


class ImageAugment:
    """The 8 symmetries of a square (flips, 90-degree rotations) on a sample's CHW image."""

    def __init__(self) -> None:
        from satcnn.data.transforms import build_augment

        self.transform = build_augment("flips")
        self._pid: int | None = None

    def __call__(self, sample: Sample) -> Sample:
        if self._pid != os.getpid():
            # albumentations keeps its own generator: reseed it in each DataLoader worker, or every
            # worker would draw the same flips. torch's seed differs per worker and per epoch.
            self.transform.set_random_seed(torch.initial_seed() % 2**32)
            self._pid = os.getpid()
        image = sample["image"].numpy().transpose(1, 2, 0)
        out = self.transform(image=image)["image"]
        return {**sample, "image": torch.from_numpy(np.ascontiguousarray(out.transpose(2, 0, 1)))}


def band_stats(split: Split, indices: np.ndarray, chunk: int = 8192) -> tuple[list[float], list[float]]:
    """Per-band mean and standard deviation over ``indices``, streamed in chunks."""
    stats = RunningStats(len(BANDS))
    ordered = np.sort(indices)
    for start in range(0, len(ordered), chunk):
        block = np.asarray(split.images[ordered[start : start + chunk]])
        stats.update(block.transpose(0, 3, 1, 2))
    return [float(v) for v in stats.mean], [float(v) for v in stats.std]


class DeepSatDataModule(L.LightningDataModule):
    """SAT-6 / SAT-4 patches from the .mat, Kaggle CSV or GeoTIFF-folder releases.

    The official test split is kept; validation is drawn from the training split with
    ``seed``. Normalisation statistics come from the training part only; the task stores
    them in its checkpoint.

    Args:
        root: a ``sat-6-full.mat`` / ``sat-4-full.mat`` file, a folder with the Kaggle CSVs,
            or a folder of per-class GeoTIFF patch folders.
        format: the release layout; ``auto`` guesses it from ``root``.
        variant: ``sat6`` or ``sat4``: the default class order and the CSV file names.
        classes: class order for the folder layout (default: sorted folder names).
        val_fraction: share of the training split held out for validation.
        seed: seed of the validation split.
        batch_size: patches per batch.
        num_workers: DataLoader worker processes.
        augment: random flips and 90-degree rotations on training patches (albumentations).
        limit_train: use only this many training patches (for quick runs).
        cache: folder for parsed CSV caches (default ``$SATCNN_CACHE`` or ``~/.cache/satcnn``).
        in_memory: hold each split whole as a uint8 tensor on ``device`` and serve whole batches
            from it (:mod:`satcnn.data.deepsat_memory`); augmentation then runs on the batch
            there, and ``num_workers`` is not used. SAT-6 takes 1.3 GB.
        device: where ``in_memory`` keeps the splits: ``cpu``, or ``cuda`` to train from GPU
            memory without host-to-device copies.
    """

    def __init__(
        self,
        root: str,
        format: Format = "auto",
        variant: Literal["sat6", "sat4"] = "sat6",
        classes: list[str] | None = None,
        val_fraction: float = 0.1,
        seed: int = 42,
        batch_size: int = 64,
        num_workers: int = 0,
        augment: bool = True,
        limit_train: int | None = None,
        cache: str | None = None,
        in_memory: bool = False,
        device: str = "cpu",
    ) -> None:
        super().__init__()
        require_in_range("val_fraction", val_fraction, 0, 1, low_open=True, high_open=True)
        require_at_least("limit_train", limit_train, 1, "patches")
        self.save_hyperparameters()
        self.root = root
        self.format: Format = format
        self.variant = variant
        self.class_order = classes
        self.val_fraction = val_fraction
        self.seed = seed
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.augment = augment
        self.limit_train = limit_train
        self.cache = cache
        self.in_memory = in_memory
        self.device = memory_device(device) if in_memory else torch.device("cpu")
        self._memory: dict[str, InMemoryPatches] = {}
        self.bands = list(BANDS)
        self.patch_size = 28
        self.splits: DeepSatSplits | None = None
        self._stats: tuple[list[float], list[float]] | None = None

    # -- loading -------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        """Read and validate the release once (idempotent, so the CLI can call it early)."""
        if self.splits is not None:
            return
        self.splits = read_deepsat(
            self.root, self.format, self.variant, self.class_order, self.cache, seed=self.seed
        )
        n = len(self.splits.train)
        order = np.random.default_rng(self.seed).permutation(n)
        n_val = max(1, round(n * self.val_fraction))
        self.val_idx = np.sort(order[:n_val])
        train_idx = order[n_val:]
        if self.limit_train is not None:
            train_idx = train_idx[: self.limit_train]
        self.train_idx = np.sort(train_idx)
        self.test_idx = np.arange(len(self.splits.test))
        log.info(
            "%s: %d train, %d val, %d test patches; classes %s",
            self.root,
            len(self.train_idx),
            len(self.val_idx),
            len(self.test_idx),
            self.splits.classes,
        )

    @property
    def classes(self) -> list[str]:
        """Class names in label order."""
        self.setup()
        assert self.splits is not None
        return self.splits.classes

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_channels(self) -> int:
        return len(self.bands)

    def band_stats(self) -> tuple[list[float], list[float]]:
        """Per-band mean and std of the training patches (raw DN), computed once."""
        if self._stats is None:
            self.setup()
            assert self.splits is not None
            self._stats = band_stats(self.splits.train, self.train_idx)
        return self._stats

    # -- loaders -------------------------------------------------------------------------
    def _loader(self, split: Split, indices: np.ndarray, train: bool, stage: str = "") -> DataLoader[Sample]:
        if self.in_memory:
            return self._memory_loader(split, indices, train, stage)
        transform = ImageAugment() if train and self.augment else None
        return DataLoader(
            DeepSatDataset(split, indices, transform),
            batch_size=self.batch_size,
            shuffle=train,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            drop_last=False,
        )

    def _memory_loader(
        self, split: Split, indices: np.ndarray, train: bool, stage: str
    ) -> DataLoader[Sample]:
        if stage not in self._memory:  # each stage's patches are copied once, on first use
            self._memory[stage] = InMemoryPatches(split, indices, self.device, augment=train and self.augment)
        return batch_loader(self._memory[stage], self.batch_size, shuffle=train)

    def train_dataloader(self) -> DataLoader[Sample]:
        self.setup()
        assert self.splits is not None
        return self._loader(self.splits.train, self.train_idx, train=True, stage="train")

    def val_dataloader(self) -> DataLoader[Sample]:
        self.setup()
        assert self.splits is not None
        return self._loader(self.splits.train, self.val_idx, train=False, stage="val")

    def test_dataloader(self) -> DataLoader[Sample]:
        self.setup()
        assert self.splits is not None
        return self._loader(self.splits.test, self.test_idx, train=False, stage="test")

    def predict_dataloader(self) -> DataLoader[Sample]:
        return self.test_dataloader()


# The DataModule protocol (satcnn.data.protocol) this class provides, checked by mypy.
_DECLARES: tuple[type[ClassData], type[DataRoot]] = (DeepSatDataModule,) * 2
