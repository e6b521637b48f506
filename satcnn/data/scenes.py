"""GeoTIFF road scenes: validation, window dataset and the Lightning DataModule.

Layout: ``root/images/<name>.tif`` (multi-band GeoTIFF) and ``root/masks/<name>.tif``
(1 band, non-zero = road) on the same pixel grid.

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
scene's own grid, with rasterio handles opened once per worker process. The mask "intersects"
the image by construction: both must share CRS, transform and shape, checked up front.
"""

from __future__ import annotations

import logging
import math
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import rasterio
import torch
from rasterio.enums import Resampling
from rasterio.io import DatasetReader
from rasterio.windows import Window
from rasterio.windows import bounds as window_bounds
from torch.utils.data import DataLoader, Dataset

from satcnn.data.normalization import RunningStats
from satcnn.data.samplers import GridWindowSampler, RandomWindowSampler, Region, WindowRef
from satcnn.data.transforms import AugmentKind, SegmentationAugment, build_augment
from satcnn.errors import ConfigError, InputFileNotFoundError, RasterError

logger = logging.getLogger(__name__)

__all__ = ["RoadSceneDataModule", "SceneInfo", "SceneWindowDataset", "collate_samples", "find_scenes"]

RASTER_SUFFIXES = (".tif", ".tiff")


@dataclass(frozen=True)
class SceneInfo:
    """An image/mask pair checked to share one pixel grid."""

    name: str
    image_path: str
    mask_path: str
    crs_wkt: str
    transform: tuple[float, ...]  # affine a, b, c, d, e, f
    height: int
    width: int
    count: int
    dtype: str


def _scene_info(name: str, image_path: Path, mask_path: Path, allow_no_crs: bool = False) -> SceneInfo:
    try:
        with rasterio.open(image_path) as img, rasterio.open(mask_path) as msk:
            if img.crs is None and not allow_no_crs:
                raise RasterError(
                    "image has no CRS; write one (e.g. rio edit-info --crs EPSG:xxxx), or set "
                    "allow_no_crs: true for pixel-unit scenes such as converted Massachusetts Roads PNGs",
                    image_path,
                )
            if img.crs is None:
                logger.warning("%s has no CRS: patch bounds are in pixel units of its transform", image_path)
            if msk.count != 1:
                raise RasterError(f"mask must have 1 band, found {msk.count}", mask_path)
            pair = f"image {image_path} and mask {mask_path}"
            if msk.crs != img.crs:
                raise RasterError(
                    f"{pair} have different CRS ({img.crs} vs {msk.crs}); "
                    "reproject the mask onto the image grid"
                )
            if (msk.height, msk.width) != (img.height, img.width):
                raise RasterError(
                    f"{pair} have different shapes ({img.height}x{img.width} vs {msk.height}x{msk.width}); "
                    "the mask must be on the image's pixel grid"
                )
            if not msk.transform.almost_equals(img.transform, precision=1e-6 * abs(img.transform.a)):
                raise RasterError(
                    f"{pair} have different transforms/resolution ({tuple(img.transform)[:6]} vs "
                    f"{tuple(msk.transform)[:6]}); the mask must be on the image's pixel grid"
                )
            if len(set(img.dtypes)) != 1:
                raise RasterError(f"image bands have mixed dtypes {img.dtypes}", image_path)
            return SceneInfo(
                name=name,
                image_path=str(image_path),
                mask_path=str(mask_path),
                crs_wkt=img.crs.to_wkt() if img.crs is not None else "",
                transform=tuple(img.transform)[:6],
                height=img.height,
                width=img.width,
                count=img.count,
                dtype=img.dtypes[0],
            )
    except rasterio.errors.RasterioIOError as exc:
        raise RasterError(f"cannot read {image_path} or {mask_path}: {exc}") from exc


def find_scenes(root: str | Path, allow_no_crs: bool = False) -> list[SceneInfo]:
    """Find and check every ``images/<name>.tif`` with its ``masks/<name>.tif`` under ``root``.

    Scenes without a CRS are refused unless ``allow_no_crs`` (their ``crs`` is then ``""``).

    Raises:
        InputFileNotFoundError: ``root``/``images`` missing, no images, or an image without mask.
        RasterError: an image/mask pair differs in CRS, transform or shape; a mask with more
            than one band; an image without CRS; band count or dtype differing across scenes.
    """
    root = Path(root)
    image_dir = root / "images"
    if not image_dir.is_dir():
        raise InputFileNotFoundError(
            "scene folder has no images/ subfolder (expected images/ and masks/)", root
        )
    images = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in RASTER_SUFFIXES)
    if not images:
        raise InputFileNotFoundError("no scenes found: no *.tif files in the images/ folder", image_dir)
    scenes = []
    for image_path in images:
        mask_path = root / "masks" / image_path.name
        if not mask_path.exists():
            raise InputFileNotFoundError(
                f"mask for image {image_path} not found; add masks/{image_path.name}", mask_path
            )
        scenes.append(_scene_info(image_path.stem, image_path, mask_path, allow_no_crs))
    first = scenes[0]
    for s in scenes[1:]:
        if s.count != first.count:
            raise RasterError(
                f"band count differs across scenes: {first.image_path} has {first.count}, "
                f"{s.image_path} has {s.count}; all scenes must have the same bands"
            )
        if s.dtype != first.dtype:
            raise RasterError(
                f"dtype differs across scenes: {first.image_path} is {first.dtype}, "
                f"{s.image_path} is {s.dtype}"
            )
    return scenes


def augment_range(dtype: str, mean: Sequence[float], std: Sequence[float]) -> float:
    """The value photometric augmentation treats as "full brightness".

    255 for uint8. For other types, the dtype's maximum would be far above the data (11-bit
    imagery in uint16 uses 0-2047 of 0-65535), and a brightness shift of -0.1 x 65535 would wipe
    a whole patch; so use the training data's range instead: the largest band mean + 4 std.
    """
    if np.dtype(dtype) == np.uint8:
        return 255.0
    return max(max(m + 4 * s for m, s in zip(mean, std, strict=True)), 1e-6)


class SceneWindowDataset(Dataset[dict[str, Any]]):
    """Reads the image and mask window named by a :class:`WindowRef`.

    A grid window (``ref.owned`` set) also gets ``valid``, float32 (1, H, W) in {0, 1}: 1 on
    the pixels it owns, so evaluation counts every scene pixel once (all 0 for a DDP padding
    repeat). Random training windows have no ``valid``.

    Rasterio handles are opened lazily once per process (DataLoader workers each get their
    own, and handles inherited over ``fork`` are never reused).

    Args:
        scenes: scenes indexed by ``WindowRef.scene``.
        augment: optional augmentation applied to each sample, reseeded with ``WindowRef.seed``.
    """

    def __init__(self, scenes: Sequence[SceneInfo], augment: SegmentationAugment | None = None) -> None:
        self.scenes = list(scenes)
        self.augment = augment
        self._handles: dict[str, DatasetReader] = {}
        self._pid = -1

    def _open(self, path: str) -> DatasetReader:
        if self._pid != os.getpid():
            self._handles = {}
            self._pid = os.getpid()
        handle = self._handles.get(path)
        if handle is None:
            handle = self._handles[path] = rasterio.open(path)
        return handle

    def __getitem__(self, ref: WindowRef) -> dict[str, Any]:
        scene = self.scenes[ref.scene]
        window = Window(ref.col_off, ref.row_off, ref.size, ref.size)
        image = self._open(scene.image_path).read(window=window)
        mask = self._open(scene.mask_path).read(1, window=window)
        minx, miny, maxx, maxy = window_bounds(window, rasterio.Affine(*scene.transform))
        sample: dict[str, Any] = {
            "image": image if self.augment is not None else torch.from_numpy(image.astype(np.float32)),
            "mask": (mask != 0).astype(np.uint8)[None],
            "crs": scene.crs_wkt,
            "bounds": (min(minx, maxx), min(miny, maxy), max(minx, maxx), max(miny, maxy)),
        }
        if self.augment is not None:  # takes native-dtype arrays, returns float32 tensors
            if ref.owned is not None:
                raise ValueError("grid windows with owned pixels are for evaluation and cannot be augmented")
            self.augment.transform.set_random_seed(ref.seed)
            return self.augment(sample)
        sample["mask"] = torch.from_numpy(sample["mask"].astype(np.float32))
        if ref.owned is not None:
            r0, r1, c0, c1 = ref.owned
            valid = torch.zeros((1, ref.size, ref.size), dtype=torch.float32)
            valid[:, r0:r1, c0:c1] = 1.0
            sample["valid"] = valid
        return sample

    def close(self) -> None:
        """Close this process's open handles."""
        for handle in self._handles.values():
            handle.close()
        self._handles = {}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_handles"] = {}
        state["_pid"] = -1
        return state


def collate_samples(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack samples into a batch, keeping every sample's CRS (WKT) and bounds (float64 N x 4).

    ``valid`` (owned pixels of grid windows) is stacked when the samples carry it.
    """
    batch: dict[str, Any] = {
        "image": torch.stack([s["image"] for s in samples]),
        "mask": torch.stack([s["mask"] for s in samples]),
        "crs": [s["crs"] for s in samples],
        "bounds": torch.tensor([s["bounds"] for s in samples], dtype=torch.float64),
    }
    if any("valid" in s for s in samples):
        if not all("valid" in s for s in samples):
            raise ValueError("cannot batch grid samples (with 'valid') together with samples without it")
        batch["valid"] = torch.stack([s["valid"] for s in samples])
    return batch


class RoadSceneDataModule(L.LightningDataModule):
    """Road segmentation patches tiled from GeoTIFF scenes.

    Training draws ``train_samples_per_epoch`` random windows per epoch (new ones each epoch,
    split across DDP ranks); validation and test cover every pixel of their scenes with a grid
    of windows overlapping by ``val_overlap`` (last row/column shifted inward to the edge).

    Split: scenes named in ``val_scenes`` / ``test_scenes`` are held out; when a list is not
    given, ``round(val_fraction * n)`` (at least 1) scenes are drawn for it with ``seed`` from
    the scenes not otherwise used, always leaving one for training. With two scenes, one trains
    and the other serves as both validation and test. With a single scene, its rows are cut into
    three disjoint bands (top: train, then validation, bottom: test, each held-out band
    ``max(patch_size, round(val_fraction * height))`` rows); if the scene is too short for that,
    all three splits use the whole scene (a warning says so: validation is then not held out).

    Batches: ``image`` float32 (N, C, H, W) raw digital numbers, ``mask`` float32 (N, 1, H, W)
    in {0, 1}, ``crs`` list of WKT strings, ``bounds`` float64 (N, 4) (minx, miny, maxx, maxy);
    validation and test batches add ``valid`` float32 (N, 1, H, W) in {0, 1}, the pixels each
    window owns: over the whole grid (and all DDP ranks) every pixel is owned exactly once, so
    metrics restricted to ``valid`` count overlaps and padding repeats once.

    Args:
        root: folder holding ``images/<name>.tif`` and ``masks/<name>.tif``.
        patch_size: side of the square patches in pixels.
        batch_size: patches per batch.
        num_workers: DataLoader worker processes (0 reads in the main process).
        train_samples_per_epoch: random training patches per epoch, over all ranks.
        val_overlap: pixels shared by neighbouring validation/test windows (< ``patch_size``).
        val_scenes: scene names (file stems) for validation; default: drawn with ``val_fraction``.
        test_scenes: scene names for testing; default: drawn with ``val_fraction``.
        val_fraction: share of scenes drawn for validation and for test when not named.
        augment: augment training patches (flips, 90-degree rotations, photometric).
        augment_kind: which pipeline of :func:`satcnn.data.transforms.build_augment` to use.
        seed: seed for the scene split, random windows and augmentation.
        bands: band names in file order; their count must equal the images' band count.
        allow_no_crs: accept scenes without a CRS (pixel-unit transforms, e.g. Massachusetts Roads
            PNGs converted by ``satcnn data png-to-geotiff``); their samples carry ``crs == ""``.
    """

    classes: tuple[str, ...] = ("background", "road")

    def __init__(
        self,
        root: str,
        patch_size: int = 224,
        batch_size: int = 8,
        num_workers: int = 0,
        train_samples_per_epoch: int = 512,
        val_overlap: int = 32,
        val_scenes: list[str] | None = None,
        test_scenes: list[str] | None = None,
        val_fraction: float = 0.2,
        augment: bool = True,
        augment_kind: AugmentKind = "default",
        seed: int = 0,
        bands: list[str] = ["red", "green", "blue", "nir"],  # noqa: B006 (copied, never mutated; shown by --print_config)
        allow_no_crs: bool = False,
    ) -> None:
        super().__init__()
        if patch_size < 1:
            raise ConfigError(f"patch_size must be >= 1, got {patch_size}")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        if num_workers < 0:
            raise ConfigError(f"num_workers must be >= 0, got {num_workers}")
        if train_samples_per_epoch < 1:
            raise ConfigError(f"train_samples_per_epoch must be >= 1, got {train_samples_per_epoch}")
        if not 0 <= val_overlap < patch_size:
            raise ConfigError(f"val_overlap must be in [0, patch_size={patch_size}), got {val_overlap}")
        if not 0.0 < val_fraction < 0.5:
            raise ConfigError(f"val_fraction must be in (0, 0.5), got {val_fraction}")
        for label, names in (("val_scenes", val_scenes), ("test_scenes", test_scenes)):
            if names is not None and not names:
                raise ConfigError(
                    f"{label} is empty; name at least one scene or leave it unset to split by seed"
                )
        self.save_hyperparameters()
        self.root = root
        self.patch_size = patch_size
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.train_samples_per_epoch = train_samples_per_epoch
        self.val_overlap = val_overlap
        self.val_scenes = val_scenes
        self.test_scenes = test_scenes
        self.val_fraction = val_fraction
        self.augment = augment
        self.augment_kind: AugmentKind = augment_kind
        self.seed = seed
        self.bands = list(bands)
        self.allow_no_crs = allow_no_crs
        self.scenes: list[SceneInfo] = []
        self.regions: dict[str, list[Region]] = {}
        self._stats: tuple[list[float], list[float]] | None = None
        self._ready = False

    @property
    def in_channels(self) -> int:
        """Number of input bands (``len(bands)``, checked against the files in :meth:`setup`)."""
        return len(self.bands)

    @property
    def input_dtype(self) -> str:
        """Dtype of the image files, e.g. ``"uint8"`` (after :meth:`setup`)."""
        self._require_setup()
        return self.scenes[0].dtype

    def setup(self, stage: str | None = None) -> None:
        """Find and check scenes, split them, and check patches fit; runs once (later calls return)."""
        if self._ready:
            return
        scenes = find_scenes(self.root, self.allow_no_crs)
        if len(self.bands) != scenes[0].count:
            raise ConfigError(
                f"bands lists {len(self.bands)} names {self.bands} but {scenes[0].image_path} has "
                f"{scenes[0].count} bands; give one name per band"
            )
        regions = self._split(scenes)
        for split, regs in regions.items():
            for reg in regs:
                if self.patch_size > min(reg.height, reg.width):
                    scene = scenes[reg.scene]
                    raise RasterError(
                        f"patch_size {self.patch_size} is larger than the {split} area of this scene "
                        f"({reg.height}x{reg.width} px of {scene.height}x{scene.width}); lower patch_size",
                        scene.image_path,
                    )
        self.scenes, self.regions = scenes, regions
        self._ready = True
        names = {k: sorted({scenes[r.scene].name for r in v}) for k, v in regions.items()}
        logger.info(
            "road scenes in %s: train %s, val %s, test %s",
            self.root,
            names["train"],
            names["val"],
            names["test"],
        )

    def _split(self, scenes: list[SceneInfo]) -> dict[str, list[Region]]:
        names = [s.name for s in scenes]
        for label, given in (("val_scenes", self.val_scenes), ("test_scenes", self.test_scenes)):
            unknown = sorted(set(given or []) - set(names))
            if unknown:
                raise ConfigError(f"{label} names unknown scenes {unknown}; scenes in {self.root}: {names}")
        whole = {s.name: Region(i, 0, 0, s.height, s.width) for i, s in enumerate(scenes)}
        if len(scenes) == 1 and self.val_scenes is None and self.test_scenes is None:
            return self._split_single(scenes[0])
        k = max(1, round(self.val_fraction * len(scenes)))
        pool = [n for n in names if n not in set(self.val_scenes or []) | set(self.test_scenes or [])]
        random.Random(self.seed).shuffle(pool)
        val = list(self.val_scenes) if self.val_scenes is not None else None
        test = list(self.test_scenes) if self.test_scenes is not None else None
        if val is None:
            val = pool[: min(k, max(len(pool) - 1, 0))] or list(test or [])
            pool = [n for n in pool if n not in val]
        if test is None:
            test = pool[: min(k, max(len(pool) - 1, 0))] or list(val)
        train = [n for n in names if n not in set(val) | set(test)]
        if set(val) & set(test):
            logger.warning(
                "validation and test share scenes %s: the checkpoint is chosen on the scenes it is "
                "tested on, so test metrics are optimistic; add scenes or name disjoint val/test_scenes",
                sorted(set(val) & set(test)),
            )
        if not train:
            raise ConfigError(
                f"no scene left for training: val_scenes={val}, test_scenes={test} use all scenes {names}"
            )
        return {
            "train": [whole[n] for n in train],
            "val": [whole[n] for n in sorted(val)],
            "test": [whole[n] for n in sorted(test)],
        }

    def _split_single(self, scene: SceneInfo) -> dict[str, list[Region]]:
        held = max(self.patch_size, round(self.val_fraction * scene.height))
        train_rows = scene.height - 2 * held
        if train_rows >= self.patch_size:
            return {
                "train": [Region(0, 0, 0, train_rows, scene.width)],
                "val": [Region(0, train_rows, 0, held, scene.width)],
                "test": [Region(0, train_rows + held, 0, held, scene.width)],
            }
        logger.warning(
            "%s: only one scene and too few rows (%d) for disjoint train/val/test bands of >= %d rows; "
            "training, validation and test all use the whole scene",
            scene.image_path,
            scene.height,
            self.patch_size,
        )
        whole = [Region(0, 0, 0, scene.height, scene.width)]
        return {"train": whole, "val": list(whole), "test": list(whole)}

    def _require_setup(self) -> None:
        if not self._ready:
            raise RuntimeError("RoadSceneDataModule.setup() must run first")

    def band_stats(self, max_pixels_per_scene: int = 2**22) -> tuple[list[float], list[float]]:
        """Per-band mean and std in raw units over the training areas only.

        Streams blocks of at most 1024 x 1024 source pixels; a training area larger than
        ``max_pixels_per_scene`` is decimated (nearest-neighbour ``out_shape`` reads, which
        GDAL serves from overviews when present), so memory and time stay bounded.
        """
        if self._stats is not None:
            return self._stats
        self.setup()
        stats = RunningStats(self.in_channels)
        block = 1024
        for reg in self.regions["train"]:
            scene = self.scenes[reg.scene]
            step = max(1, math.ceil(math.sqrt(reg.height * reg.width / max_pixels_per_scene)))
            with rasterio.open(scene.image_path) as src:
                for r in range(reg.row_off, reg.row_off + reg.height, block):
                    h = min(block, reg.row_off + reg.height - r)
                    for c in range(reg.col_off, reg.col_off + reg.width, block):
                        w = min(block, reg.col_off + reg.width - c)
                        out_shape = (scene.count, max(1, h // step), max(1, w // step))
                        data = src.read(
                            window=Window(c, r, w, h), out_shape=out_shape, resampling=Resampling.nearest
                        )
                        stats.update(data)
        self._stats = ([float(v) for v in stats.mean], [float(v) for v in stats.std])
        logger.info("band stats over %d training pixels: mean %s std %s", stats.count, *self._stats)
        return self._stats

    def _augment(self) -> SegmentationAugment | None:
        if not self.augment or self.augment_kind == "none":
            return None
        mean, std = self.band_stats()
        max_value = augment_range(self.scenes[0].dtype, mean, std)
        return SegmentationAugment(build_augment(self.augment_kind), max_value=max_value)

    def _loader(
        self, sampler: RandomWindowSampler | GridWindowSampler, augment: bool
    ) -> DataLoader[dict[str, Any]]:
        dataset = SceneWindowDataset(self.scenes, self._augment() if augment else None)
        return DataLoader(
            dataset,  # type: ignore[arg-type]
            batch_size=self.batch_size,
            sampler=sampler,  # type: ignore[arg-type]
            num_workers=self.num_workers,
            collate_fn=collate_samples,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader[dict[str, Any]]:
        """Random windows over the training areas, resampled each epoch and sharded across ranks."""
        self._require_setup()
        sampler = RandomWindowSampler(
            self.regions["train"], self.patch_size, self.train_samples_per_epoch, seed=self.seed
        )
        return self._loader(sampler, augment=True)

    def _grid_loader(self, split: str) -> DataLoader[dict[str, Any]]:
        self._require_setup()
        sampler = GridWindowSampler(self.regions[split], self.patch_size, self.val_overlap, seed=self.seed)
        return self._loader(sampler, augment=False)

    def val_dataloader(self) -> DataLoader[dict[str, Any]]:
        """Overlapping grid covering every pixel of the validation areas."""
        return self._grid_loader("val")

    def test_dataloader(self) -> DataLoader[dict[str, Any]]:
        """Overlapping grid covering every pixel of the test areas."""
        return self._grid_loader("test")
