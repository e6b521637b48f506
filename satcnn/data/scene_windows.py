"""Road scene samples: the image, mask and valid pixels of one window, and their batching.

The image is read by :class:`satcnn.io.reader.WindowReader`, the reader inference uses, so a
window holds the same model inputs in training and in inference: invalid pixels (nodata,
masked, or masked by an alpha band beyond the model's bands) hold
:data:`satcnn.io.reader.FILL_VALUE`, and ``valid`` marks them 0 so that loss and metrics skip
them.

Why not torchgeo's ``RasterDataset`` directly: torchgeo 0.8 indexes files in a geopandas
``GeoDataFrame`` in one CRS and answers every query (``ds[xmin:xmax, ymin:ymax]``) by
``rasterio.merge.merge`` over ``WarpedVRT`` handles, so each 224 px patch pays for a
merge/resample (~200-240 patches/s on a 4096^2 tiled GeoTIFF against ~2000+/s for a plain
window read). Its grid sampler also lets the last chip hang past the edge (padded with
nodata), it reprojects all scenes into the first file's CRS, and its samplers cannot be
sharded per epoch under DDP. We keep its concepts and conventions (image dataset
intersected with a mask dataset, sampler yields where / dataset reads, area-weighted random
sampling, ``tile_to_chips`` grid counts, samples carry ``crs`` and ``bounds`` as
``(minx, miny, maxx, maxy)``) and implement the read as an integer pixel window of each
scene's own grid, with rasterio handles opened once per worker process.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import rasterio
import torch
from rasterio.io import DatasetReader
from rasterio.windows import Window
from rasterio.windows import bounds as window_bounds
from torch.utils.data import Dataset

from satcnn.data.batch_augment import draw_photometric, flip_rotate
from satcnn.data.samplers import WindowRef
from satcnn.data.scene_index import SceneInfo
from satcnn.data.transforms import SegmentationAugment
from satcnn.io.reader import WindowReader

logger = logging.getLogger(__name__)

__all__ = ["SceneWindowDataset", "collate_samples"]


class SceneWindowDataset(Dataset[dict[str, Any]]):
    """Reads the image, mask and valid pixels of the window named by a :class:`WindowRef`.

    Every sample carries ``valid``, float32 (1, H, W) in {0, 1}: 1 where the image pixel is
    valid (see :mod:`satcnn.io.reader`) and, for a grid window (``ref.owned`` set), owned by
    this window, so evaluation counts every valid scene pixel once (all 0 for a DDP padding
    repeat). Random training windows own all their pixels.

    Rasterio handles are opened lazily once per process (DataLoader workers each get their
    own, and handles inherited over ``fork`` are never reused).

    Args:
        scenes: scenes indexed by ``WindowRef.scene``.
        augment: optional albumentations augmentation applied to each sample, reseeded with
            ``WindowRef.seed`` (the slower per-sample path; see :mod:`satcnn.data.batch_augment`).
        bands: how many leading image bands the model consumes; ``None`` reads all. An alpha
            band beyond them masks the image (the alpha rule of :mod:`satcnn.io.reader`). A
            scene's ``band_indexes``, when set, name the bands instead.
        geometric: flip/rotate each sample as numpy views, drawn from ``WindowRef.seed``
            (:func:`satcnn.data.batch_augment.flip_rotate`); the sample's arrays are then numpy.
        photometric: draw each sample's photometric parameters (``photometric``, ``seed`` keys)
            for :func:`satcnn.data.batch_augment.apply_photometric` on the whole batch.
    """

    def __init__(
        self,
        scenes: Sequence[SceneInfo],
        augment: SegmentationAugment | None = None,
        bands: int | None = None,
        geometric: bool = False,
        photometric: bool = False,
    ) -> None:
        if augment is not None and (geometric or photometric):
            raise ValueError("choose the albumentations augment or geometric/photometric, not both")
        self.scenes = list(scenes)
        self.augment = augment
        self.bands = bands
        self.geometric = geometric
        self.photometric = photometric
        self._readers: dict[str, WindowReader] = {}
        self._masks: dict[str, DatasetReader] = {}
        self._pid = -1

    def _this_process(self) -> None:
        if self._pid != os.getpid():
            self._readers, self._masks = {}, {}
            self._pid = os.getpid()

    def _reader(self, scene: SceneInfo) -> WindowReader:
        self._this_process()
        path = scene.image_path
        reader = self._readers.get(path)
        if reader is None:
            indexes = scene.band_indexes or None
            reader = self._readers[path] = WindowReader(rasterio.open(path), self.bands, indexes=indexes)
        return reader

    def _mask(self, path: str) -> DatasetReader:
        self._this_process()
        handle = self._masks.get(path)
        if handle is None:
            handle = self._masks[path] = rasterio.open(path)
        return handle

    def __getitem__(self, ref: WindowRef) -> dict[str, Any]:
        scene = self.scenes[ref.scene]
        window = Window(ref.col_off, ref.row_off, ref.size, ref.size)  # type: ignore[call-arg]
        # Augmentation takes the file's own dtype (uint8 has a fast path); the fill is 0 in any dtype.
        dtype = scene.dtype if self.augment is not None else "float32"
        image, valid = self._reader(scene).read(window, dtype=dtype)
        mask = self._mask(scene.mask_path).read(1, window=window)
        if ref.owned is not None:
            r0, r1, c0, c1 = ref.owned
            owned = np.zeros_like(valid)
            owned[r0:r1, c0:c1] = True
            valid &= owned
        minx, miny, maxx, maxy = window_bounds(window, rasterio.Affine(*scene.transform))
        sample: dict[str, Any] = {
            "crs": scene.crs_wkt,
            "bounds": (min(minx, maxx), min(miny, maxy), max(minx, maxx), max(miny, maxy)),
        }
        if self.augment is not None:  # takes native-dtype arrays, returns float32 tensors
            if ref.owned is not None:
                raise ValueError("grid windows with owned pixels are for evaluation and cannot be augmented")
            sample.update(
                image=image, mask=(mask != 0).astype(np.uint8)[None], valid=valid.view(np.uint8)[None]
            )
            self.augment.transform.set_random_seed(ref.seed)
            return self.augment(sample)
        arrays = [image, (mask != 0).astype(np.float32)[None], valid.astype(np.float32)[None]]
        if self.geometric or self.photometric:
            if ref.owned is not None:
                raise ValueError("grid windows with owned pixels are for evaluation and cannot be augmented")
            rng = np.random.default_rng(ref.seed)
            if self.geometric:  # views; collate_samples makes the one copy, into the batch
                arrays = flip_rotate(arrays, rng)
            if self.photometric:
                sample["photometric"] = draw_photometric(rng)
                sample["seed"] = ref.seed
        else:
            arrays = [torch.from_numpy(a) for a in arrays]
        sample["image"], sample["mask"], sample["valid"] = arrays
        return sample

    def close(self) -> None:
        """Close this process's open handles."""
        for reader in self._readers.values():
            reader.ds.close()
        for handle in self._masks.values():
            handle.close()
        self._readers, self._masks = {}, {}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_readers"], state["_masks"] = {}, {}
        state["_pid"] = -1
        return state


def collate_samples(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack samples into a batch, keeping every sample's CRS (WKT) and bounds (float64 N x 4).

    ``valid`` (valid and, for grid windows, owned pixels) is stacked when the samples carry it.
    Arrays may be tensors or numpy arrays (views, as geometric augmentation gives): numpy ones
    are copied once, straight into the batch. ``photometric`` (float32 N x 4) and ``seed``
    (int64 N) are stacked when the samples carry them.
    """
    batch: dict[str, Any] = {
        "image": _stack([s["image"] for s in samples]),
        "mask": _stack([s["mask"] for s in samples]),
        "crs": [s["crs"] for s in samples],
        "bounds": torch.tensor([s["bounds"] for s in samples], dtype=torch.float64),
    }
    if any("valid" in s for s in samples):
        if not all("valid" in s for s in samples):
            raise ValueError("cannot batch samples with 'valid' together with samples without it")
        batch["valid"] = _stack([s["valid"] for s in samples])
    if "photometric" in samples[0]:
        batch["photometric"] = torch.from_numpy(np.stack([s["photometric"] for s in samples]))
        batch["seed"] = torch.tensor([s["seed"] for s in samples], dtype=torch.int64)
    return batch


def _stack(items: Sequence[Any]) -> torch.Tensor:
    if isinstance(items[0], np.ndarray):
        return torch.from_numpy(np.stack(items))
    return torch.stack(list(items))
