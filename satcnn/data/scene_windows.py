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
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np
import torch
from rasterio.io import DatasetReader
from rasterio.windows import Window
from torch.utils.data import Dataset

from satcnn.data.batch_augment import draw_photometric, flip_rotate
from satcnn.data.samplers import WindowRef
from satcnn.data.scene_index import SceneInfo
from satcnn.data.transforms import SegmentationAugment
from satcnn.io.raster import open_handle
from satcnn.io.reader import WindowReader
from satcnn.io.remote import gdal_env, is_href

logger = logging.getLogger(__name__)

__all__ = ["SceneWindowDataset", "collate_samples", "to_float"]


class SceneWindowDataset(Dataset[dict[str, Any]]):
    """Reads the image, mask and valid pixels of the window named by a :class:`WindowRef`.

    Every sample carries ``image`` (C, H, W) in the file's own integer dtype (float32 for float
    files), ``mask`` and ``valid``
    uint8 (1, H, W) in {0, 1} (:func:`to_float` makes them float32 on the device; the
    albumentations path returns float32 tensors). ``valid`` is 1 where the image pixel is
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
        self._remote = any(is_href(s.image_path) or is_href(s.mask_path) for s in self.scenes)

    def _env(self) -> AbstractContextManager[None]:
        """Remote scenes (STAC hrefs) are read under satcnn's GDAL configuration (``io.remote``)."""
        return gdal_env() if self._remote else nullcontext()

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
            reader = self._readers[path] = WindowReader(open_handle(path), self.bands, indexes=indexes)
        return reader

    def _mask(self, path: str) -> DatasetReader:
        self._this_process()
        handle = self._masks.get(path)
        if handle is None:
            handle = self._masks[path] = open_handle(path)
        return handle

    def __getitem__(self, ref: WindowRef) -> dict[str, Any]:
        with self._env():
            return self._sample(ref)

    def _sample(self, ref: WindowRef) -> dict[str, Any]:
        scene = self.scenes[ref.scene]
        window = Window(ref.col_off, ref.row_off, ref.size, ref.size)  # type: ignore[call-arg]
        # Integer files keep their dtype (the fill is 0 in any dtype): albumentations has a uint8 fast
        # path, and the other paths leave the float conversion to the device (see to_float).
        dtype = scene.dtype if self.augment is not None else _batch_dtype(scene.dtype)
        image, valid = self._reader(scene).read(window, dtype=dtype)
        road = self._mask(scene.mask_path).read(1, window=window) != 0
        if ref.owned is not None:
            _keep_owned(valid, ref.owned)
        sample: dict[str, Any] = {"crs": scene.crs_wkt, "bounds": _window_bounds(scene.transform, window)}
        if self.augment is not None:  # takes native-dtype arrays, returns float32 tensors
            if ref.owned is not None:
                raise ValueError("grid windows with owned pixels are for evaluation and cannot be augmented")
            sample.update(image=image, mask=road.view(np.uint8)[None], valid=valid.view(np.uint8)[None])
            self.augment.transform.set_random_seed(ref.seed)
            return self.augment(sample)
        arrays = [image, road.view(np.uint8)[None], valid.view(np.uint8)[None]]
        if self.geometric or self.photometric:
            if ref.owned is not None:
                raise ValueError("grid windows with owned pixels are for evaluation and cannot be augmented")
            rng = np.random.default_rng(ref.seed)
            if self.geometric:  # views; collate_samples makes the one copy, into the batch
                arrays = flip_rotate(arrays, rng)
            if self.photometric:
                sample["photometric"] = draw_photometric(rng)
                sample["seed"] = ref.seed
        sample["image"], sample["mask"], sample["valid"] = arrays
        return sample

    def __getitems__(self, refs: Sequence[WindowRef]) -> list[dict[str, Any]] | dict[str, Any]:
        with self._env():
            return self._batch(refs)

    def _batch(self, refs: Sequence[WindowRef]) -> list[dict[str, Any]] | dict[str, Any]:
        """A whole batch, read straight into its arrays (the DataLoader's batched fetch).

        Each window is read into its slot of one ``(N, C, H, W)`` array in the file's type, so
        no per-sample array is made and stacked: for unaugmented windows GDAL writes the pixels
        where the batch keeps them; geometric augmentation copies each sample's flipped view
        into its slot once. The result is the batch :func:`collate_samples` would make from the
        samples of :meth:`__getitem__` (a test checks they are equal); the albumentations path
        and windows of different sizes or data types fall back to those samples.
        """
        dtypes = {self.scenes[r.scene].dtype for r in refs}
        if self.augment is not None or not refs or len({r.size for r in refs}) != 1 or len(dtypes) != 1:
            return [self[ref] for ref in refs]
        n, size = len(refs), refs[0].size
        scene0 = self.scenes[refs[0].scene]
        bands = self._reader(scene0).rule.bands
        image = np.empty((n, bands, size, size), dtype=_batch_dtype(scene0.dtype))
        mask = np.empty((n, 1, size, size), dtype=np.uint8)
        valid = np.empty((n, 1, size, size), dtype=np.uint8)
        batch: dict[str, Any] = {"crs": [], "bounds": np.empty((n, 4))}
        params = []
        for i, ref in enumerate(refs):
            scene = self.scenes[ref.scene]
            window = Window(ref.col_off, ref.row_off, size, size)  # type: ignore[call-arg]
            batch["crs"].append(scene.crs_wkt)
            batch["bounds"][i] = _window_bounds(scene.transform, window)
            if ref.owned is not None and (self.geometric or self.photometric):
                raise ValueError("grid windows with owned pixels are for evaluation and cannot be augmented")
            rng = np.random.default_rng(ref.seed)  # the draws of __getitem__, in its order
            if self.geometric:
                pixels, ok = self._reader(scene).read(window, dtype=image.dtype)
                road = (self._mask(scene.mask_path).read(1, window=window) != 0).view(np.uint8)
                image[i], mask[i, 0], ok = flip_rotate([pixels, road, ok], rng)
            else:
                _, ok = self._reader(scene).read(window, out=image[i])
                handle = self._mask(scene.mask_path)
                if handle.dtypes[0] == "uint8":  # in place: 0 stays 0, any other value becomes 1
                    np.minimum(handle.read(1, window=window, out=mask[i, 0]), 1, out=mask[i, 0])
                else:
                    np.not_equal(handle.read(1, window=window), 0, out=mask[i, 0], casting="unsafe")
            if self.photometric:
                params.append(draw_photometric(rng))
            valid[i, 0] = ok
            if ref.owned is not None:
                _keep_owned(valid[i, 0], ref.owned)
        batch.update(
            image=torch.from_numpy(image),
            mask=torch.from_numpy(mask),
            valid=torch.from_numpy(valid),
            bounds=torch.from_numpy(batch["bounds"]),
        )
        if self.photometric:
            batch["photometric"] = torch.from_numpy(np.stack(params))
            batch["seed"] = torch.tensor([ref.seed for ref in refs], dtype=torch.int64)
        return _Batch(batch)

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


class _Batch(dict[str, Any]):
    """A batch that :meth:`SceneWindowDataset.__getitems__` read already batched."""


def collate_samples(samples: Sequence[dict[str, Any]] | dict[str, Any]) -> dict[str, Any]:
    """Stack samples into a batch, keeping every sample's CRS (WKT) and bounds (float64 N x 4).

    A batch that :meth:`SceneWindowDataset.__getitems__` read already batched passes through.

    ``valid`` (valid and, for grid windows, owned pixels) is stacked when the samples carry it.
    Arrays may be tensors or numpy arrays (views, as geometric augmentation gives): numpy ones
    are copied once, straight into the batch. ``photometric`` (float32 N x 4) and ``seed``
    (int64 N) are stacked when the samples carry them.
    """
    if isinstance(samples, _Batch):
        return dict(samples)
    if isinstance(samples, dict):
        raise TypeError("collate_samples takes a list of samples")
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


def to_float(batch: dict[str, Any]) -> dict[str, Any]:
    """Make a batch's ``image``, ``mask`` and ``valid`` float32, in place, on their device.

    The loader stacks them in the file's own type (``image``: uint8, uint16 or float; ``mask`` and
    ``valid``: uint8 in {0, 1}), a quarter of float32's bytes for uint8 through the collate copy,
    pinned memory and the host-to-device copy; :meth:`RoadSceneDataModule.on_after_batch_transfer
    <satcnn.data.scenes.RoadSceneDataModule.on_after_batch_transfer>` calls this once the batch
    is on its device. Float32 tensors are left as they are.
    """
    for key in ("image", "mask", "valid"):
        value = batch.get(key)
        if isinstance(value, torch.Tensor) and value.dtype != torch.float32:
            batch[key] = value.float()
    return batch


def _batch_dtype(file_dtype: str) -> np.dtype[Any]:
    """The loaders' image type: the file's own for integers, float32 for float files."""
    dtype = np.dtype(file_dtype)
    return dtype if np.issubdtype(dtype, np.integer) else np.dtype(np.float32)


def _keep_owned(valid: np.ndarray, owned: tuple[int, int, int, int]) -> None:
    """Zero ``valid`` (H, W), in place, outside the window's owned rows and columns."""
    r0, r1, c0, c1 = owned
    valid[:r0] = 0
    valid[r1:] = 0
    valid[:, :c0] = 0
    valid[:, c1:] = 0


def _window_bounds(transform: Sequence[float], window: Window) -> tuple[float, float, float, float]:
    """``(minx, miny, maxx, maxy)`` of a window's four corners under the affine ``(a, b, c, d, e, f)``.

    Plain arithmetic: ``rasterio.windows.bounds`` goes through ``Affine * tuple``, which warns on
    every call in affine 2.4+ (two warnings per training patch).
    """
    a, b, c, d, e, f = transform[:6]
    r0, c0 = float(window.row_off), float(window.col_off)
    r1, c1 = r0 + float(window.height), c0 + float(window.width)
    xs = [c + a * col + b * row for col in (c0, c1) for row in (r0, r1)]
    ys = [f + d * col + e * row for col in (c0, c1) for row in (r0, r1)]
    return (min(xs), min(ys), max(xs), max(ys))


def _stack(items: Sequence[Any]) -> torch.Tensor:
    if isinstance(items[0], np.ndarray):
        return torch.from_numpy(np.stack(items))
    return torch.stack(list(items))
