"""The Lightning DataModule of GeoTIFF road scenes: split, band statistics and loaders.

Scenes are found and checked by :mod:`satcnn.data.scene_index`, read window by window by
:mod:`satcnn.data.scene_windows` (the pixel contract of :mod:`satcnn.io.reader`), and tiled by
the samplers of :mod:`satcnn.data.samplers`.
"""

from __future__ import annotations

import logging
import math
import random
from typing import Any, Literal

import lightning as L
from rasterio.windows import Window
from torch.utils.data import DataLoader

from satcnn.checks import require_at_least, require_in_range
from satcnn.data.batch_augment import apply_photometric, augment_range
from satcnn.data.mask_values import check_mask_values
from satcnn.data.normalization import RunningStats
from satcnn.data.protocol import BandPercentiles, DataRoot, RasterBands, TaskData
from satcnn.data.samplers import GridWindowSampler, RandomWindowSampler, Region
from satcnn.data.scene_bands import resolve_scene_bands
from satcnn.data.scene_index import SceneInfo, find_scenes
from satcnn.data.scene_windows import SceneWindowDataset, collate_samples, to_float
from satcnn.data.transforms import SegmentationAugment, build_augment
from satcnn.errors import ConfigError, RasterError
from satcnn.io.bands import parse_band_spec
from satcnn.io.radiometry import PercentileSample
from satcnn.io.raster import open_dataset
from satcnn.io.reader import WindowReader

logger = logging.getLogger(__name__)

__all__ = [
    "RoadSceneDataModule",
    "SceneAugmentKind",
    "SceneInfo",
    "SceneWindowDataset",
    "augment_range",
    "collate_samples",
    "find_scenes",
]


SceneAugmentKind = Literal["none", "flips", "default", "albumentations"]


class RoadSceneDataModule(L.LightningDataModule):
    """Road segmentation patches tiled from GeoTIFF scenes.

    Training draws ``train_samples_per_epoch`` random windows per epoch (new ones each epoch,
    split across DDP ranks); validation and test cover every pixel of their scenes with a grid
    of windows overlapping by ``val_overlap`` (the one grid rule of ``satcnn.io.grid``).

    Split: scenes named in ``val_scenes`` / ``test_scenes`` are held out; when a list is not
    given, ``round(val_fraction * n)`` (at least 1) scenes are drawn for it with ``seed`` from
    the scenes not otherwise used, always leaving one for training. With two scenes, one trains
    and the other serves as both validation and test. With a single scene, its rows are cut into
    three disjoint bands (top: train, then validation, bottom: test, each held-out band
    ``max(patch_size, round(val_fraction * height))`` rows); if the scene is too short for that,
    all three splits use the whole scene (a warning says so: validation is then not held out).

    Batches, as the LightningModule sees them: ``image`` float32 (N, C, H, W) raw digital numbers
    (invalid pixels hold ``satcnn.io.reader.FILL_VALUE``), ``mask`` float32 (N, 1, H, W) in
    {0, 1}, ``valid`` float32 (N, 1, H, W) in {0, 1}, ``crs`` list of WKT strings, ``bounds``
    float64 (N, 4) (minx, miny, maxx, maxy). ``valid`` is 1 on valid image pixels (not nodata,
    not masked, see :mod:`satcnn.io.reader`) that the window owns: a training window owns all its pixels; over
    a validation/test grid (and all DDP ranks) every pixel is owned exactly once, so loss and
    metrics restricted to ``valid`` skip invalid pixels and count overlaps and padding once.
    The loaders yield ``image`` in the files' own type and ``mask``/``valid`` as uint8 (a quarter
    of the bytes to stack, pin and copy for uint8 scenes); :meth:`on_after_batch_transfer`, which
    Lightning calls once the batch is on its device, makes them float32. Code that iterates a
    loader itself calls ``dm.on_after_batch_transfer(batch, 0)``.

    Args:
        root: folder holding ``images/<name>.tif`` and ``masks/<name>.tif``; or a STAC
            ItemCollection, Catalog or Collection (a path or URL) whose items each carry an image
            and a label asset, read in place (:mod:`satcnn.data.scene_stac`), scenes named by item id.
        patch_size: side of the square patches in pixels.
        batch_size: patches per batch.
        num_workers: DataLoader worker processes (0 reads in the main process).
        train_samples_per_epoch: random training patches per epoch, over all ranks.
        val_overlap: pixels shared by neighbouring validation/test windows (< ``patch_size``).
        val_scenes: scene names (file stems; STAC item ids) for validation; default: drawn with
            ``val_fraction``.
        test_scenes: scene names for testing; default: drawn with ``val_fraction``.
        val_fraction: share of scenes drawn for validation and for test when not named.
        augment: augment training patches (flips, 90-degree rotations, photometric).
        augment_kind: ``flips`` (flips and 90-degree rotations, as numpy views per sample),
            ``default`` (``flips`` plus brightness/contrast, gamma and noise applied to the whole
            batch as tensor ops after it reaches the device, see
            :mod:`satcnn.data.batch_augment`), ``albumentations`` (the same transforms run by
            albumentations per sample in the DataLoader: slower, kept as the base for custom
            albumentations pipelines) or ``none``.
        seed: seed for the scene split, random windows and augmentation.
        bands: the model's bands in order: 1-based image band indexes (``[3, 2, 1, 4]`` or
            ``"3,2,1,4"``), or names matched against each image's band descriptions and colour
            interpretation (:mod:`satcnn.data.scene_bands`). Names that an image's bands do not
            all carry label its first bands: their count must then equal the image's band
            count, or the image may have more bands when every band beyond them is alpha (then
            a mask). Any data type trains (uint8, uint16, float): the model sees raw values,
            normalised by the training mean and std; the checkpoint records the type and each
            band's 1/2/98/99th percentiles for inference's ``--rescale``.
        allow_no_crs: accept scenes without a CRS (pixel-unit transforms, e.g. Massachusetts Roads
            PNGs converted by ``satcnn data png-to-geotiff``); their samples carry ``crs == ""``.
        allow_other_mask_values: accept masks with values other than 0, 1 and 255 (with a
            warning), reading every non-zero value as road; by default they are an error
            (:mod:`satcnn.data.mask_values`).
        image_asset: a STAC ``root``: each item's image asset (default: its asset with role ``data``).
        label_asset: a STAC ``root``: each item's label asset (default: role ``labels``).
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
        augment_kind: SceneAugmentKind = "default",
        seed: int = 0,
        bands: list[str | int] | str = ["red", "green", "blue", "nir"],  # noqa: B006 (copied, never mutated; shown by --print_config)
        allow_no_crs: bool = False,
        allow_other_mask_values: bool = False,
        image_asset: str | None = None,
        label_asset: str | None = None,
    ) -> None:
        super().__init__()
        require_at_least("patch_size", patch_size, 1)
        require_at_least("batch_size", batch_size, 1)
        require_at_least("num_workers", num_workers, 0)
        require_at_least("train_samples_per_epoch", train_samples_per_epoch, 1)
        require_in_range("val_overlap", val_overlap, 0, patch_size, high_open=True, high_name="patch_size")
        require_in_range("val_fraction", val_fraction, 0, 0.5, low_open=True, high_open=True)
        for label, names in (("val_scenes", val_scenes), ("test_scenes", test_scenes)):
            if names is not None and not names:
                raise ConfigError(
                    f"{label} is empty; name at least one scene or leave it unset to split by seed"
                )
        try:
            spec = parse_band_spec(bands)
        except ValueError as err:
            raise ConfigError(f"bands {err}") from None
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
        self.augment_kind: SceneAugmentKind = augment_kind
        self.seed = seed
        self.band_spec: list[str | int] = list(spec or [])
        self.bands = [str(b) for b in self.band_spec]  # names once setup has resolved indexes
        self.band_sources: list[int] = []
        self.band_colorinterp: list[str] = []
        self.allow_no_crs = allow_no_crs
        self.allow_other_mask_values = allow_other_mask_values
        self.assets = (image_asset, label_asset)
        self.scenes: list[SceneInfo] = []
        self.regions: dict[str, list[Region]] = {}
        self._stats: tuple[list[float], list[float]] | None = None
        self._percentiles: list[list[float]] = []
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
        found = find_scenes(self.root, self.allow_no_crs, *self.assets)
        resolved = resolve_scene_bands(found, self.band_spec)
        scenes = resolved.scenes
        self.bands, self.band_sources = resolved.names, resolved.sources
        self.band_colorinterp = resolved.colorinterp
        check_mask_values([s.mask_path for s in scenes], self.allow_other_mask_values)
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
        """Per-band mean and std in raw units over the valid pixels of the training areas only.

        Streams blocks of at most 1024 x 1024 source pixels; a training area larger than
        ``max_pixels_per_scene`` is decimated (nearest-neighbour ``out_shape`` reads, which
        GDAL serves from overviews when present), so memory and time stay bounded. Invalid
        pixels (nodata, masked; see :mod:`satcnn.io.reader`) are left out.

        Raises:
            RasterError: no training pixel is valid.
        """
        if self._stats is not None:
            return self._stats
        self.setup()
        stats = RunningStats(self.in_channels)
        sample = PercentileSample(self.in_channels, seed=self.seed)
        block = 1024
        for reg in self.regions["train"]:
            scene = self.scenes[reg.scene]
            step = max(1, math.ceil(math.sqrt(reg.height * reg.width / max_pixels_per_scene)))
            with open_dataset(scene.image_path) as src:
                reader = WindowReader(src, self.in_channels, indexes=scene.band_indexes or None)
                for r in range(reg.row_off, reg.row_off + reg.height, block):
                    h = min(block, reg.row_off + reg.height - r)
                    for c in range(reg.col_off, reg.col_off + reg.width, block):
                        w = min(block, reg.col_off + reg.width - c)
                        out_shape = (max(1, h // step), max(1, w // step))
                        data, valid = reader.read(
                            Window(c, r, w, h), dtype=src.dtypes[0], out_shape=out_shape
                        )
                        stats.update(data[:, valid][:, None])
                        sample.update(data[:, valid])
        if stats.count == 0:
            paths = sorted({self.scenes[reg.scene].image_path for reg in self.regions["train"]})
            raise RasterError(
                f"every training pixel of {', '.join(paths)} is nodata or masked; "
                "check the files' nodata value, internal mask or alpha band"
            )
        self._stats = ([float(v) for v in stats.mean], [float(v) for v in stats.std])
        self._percentiles = sample.percentiles()
        logger.info("band stats over %d training pixels: mean %s std %s", stats.count, *self._stats)
        return self._stats

    def band_percentiles(self) -> list[list[float]]:
        """Per band, the 1st, 2nd, 98th and 99th percentiles (raw units) of a sample of the valid
        training pixels, drawn in :meth:`band_stats`'s pass (``satcnn.io.radiometry``)."""
        self.band_stats()
        return self._percentiles

    def _max_value(self) -> float:
        mean, std = self.band_stats()
        return augment_range(self.scenes[0].dtype, mean, std)

    def _dataset(self, augment: bool) -> SceneWindowDataset:
        kind = self.augment_kind if augment and self.augment else "none"
        if kind == "albumentations":
            pipeline = SegmentationAugment(build_augment("default"), max_value=self._max_value())
            return SceneWindowDataset(self.scenes, pipeline, self.in_channels)
        return SceneWindowDataset(
            self.scenes,
            bands=self.in_channels,
            geometric=kind in ("flips", "default"),
            photometric=kind == "default",
        )

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """On the batch's device: make it float32 (:func:`~satcnn.data.scene_windows.to_float`),
        then apply its photometric augmentation (training batches only carry it)."""
        if not isinstance(batch, dict):
            return batch
        batch = to_float(batch)
        trainer = getattr(self, "trainer", None)
        if trainer is not None:  # `bf16-true`/`16-true`: Lightning cast the float inputs before the
            batch = trainer.precision_plugin.convert_input(batch)  # transfer; these were integers then
        if "photometric" in batch:
            return apply_photometric(batch, self._max_value())
        return batch

    def _loader(
        self, sampler: RandomWindowSampler | GridWindowSampler, augment: bool
    ) -> DataLoader[dict[str, Any]]:
        dataset = self._dataset(augment)
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


# The DataModule protocol (satcnn.data.protocol) this class provides, checked by mypy.
_DECLARES: tuple[type[TaskData], type[RasterBands], type[BandPercentiles], type[DataRoot]] = (
    RoadSceneDataModule,
) * 4
