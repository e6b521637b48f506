"""Cost of augmentation in a ``fit`` step, and training reads against plain rasterio reads.

Writes a 4-band uint8 scene (``bench_tiling.write_scene``) and times, in one process with
``num_workers=0``:

- one ``fit`` step (data + forward + backward + optimiser) of ResUNet 16-128 on 128 px patches,
  batch 8, for each ``augment_kind``: none, flips (views), default (views + batch photometric
  in ``on_after_batch_transfer``) and albumentations (the old per-sample pipeline);
- the training loader alone (patches/s) for the same kinds, and plain rasterio window reads
  of image + mask at the same sizes;
- augmenting one batch in tensor ops: satcnn's batch photometric against kornia 0.9's
  ``AugmentationSequential`` of the same transforms, and kornia's batch flips/rot90.

Usage::

    .venv/bin/python bench/bench_augment.py [--size 2048] [--steps 30] [--patches 800]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import rasterio
import torch
from bench_tiling import write_scene
from rasterio.windows import Window
from results_io import RESULTS, row, write_json

from satcnn.data.batch_augment import apply_photometric, draw_photometric
from satcnn.data.scenes import RoadSceneDataModule
from satcnn.tasks.segmentation import SegmentationTask

PATCH = 128
BATCH = 8
KINDS = ("none", "flips", "default", "albumentations")


class StepTimer(L.Callback):
    """Wall time between the ends of consecutive training batches (data loading included)."""

    def __init__(self) -> None:
        self.ends: list[float] = []

    def on_train_batch_end(self, *args: Any) -> None:
        self.ends.append(time.perf_counter())

    def step_s(self, warmup: int = 3) -> float:
        diffs = np.diff(self.ends[warmup:])
        return float(statistics.median(diffs))


def datamodule(root: Path, kind: str, samples: int, patch: int) -> RoadSceneDataModule:
    return RoadSceneDataModule(
        str(root),
        patch_size=patch,
        batch_size=BATCH,
        train_samples_per_epoch=samples,
        val_scenes=["scene_val"],
        test_scenes=["scene_val"],
        augment=kind != "none",
        augment_kind=kind if kind != "none" else "default",  # type: ignore[arg-type]
    )


def fit_step(root: Path, kind: str, steps: int, patch: int) -> float:
    timer = StepTimer()
    task = SegmentationTask(model="resunet", model_kwargs={"filters": [16, 32, 64, 128]}, scheduler="none")
    trainer = L.Trainer(
        max_steps=steps,
        limit_val_batches=0,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
        default_root_dir=root,  # the tasks' checkpoints go to the temporary folder
    )
    trainer.fit(task, datamodule=datamodule(root, kind, steps * BATCH, patch))
    return timer.step_s()


def loader_rate(root: Path, kind: str, patches: int, patch: int) -> float:
    dm = datamodule(root, kind, patches + BATCH, patch)
    dm.setup()
    it = iter(dm.train_dataloader())
    dm.on_after_batch_transfer(next(it), 0)
    start, n = time.perf_counter(), 0
    for batch in it:
        dm.on_after_batch_transfer(batch, 0)  # photometric work, as in fit
        n += len(batch["image"])
    return n / (time.perf_counter() - start)


def rasterio_rate(root: Path, size: int, patches: int, patch: int) -> float:
    offs = np.random.default_rng(0).integers(0, size - patch, size=(patches, 2))
    with (
        rasterio.open(root / "images" / "scene.tif") as img,
        rasterio.open(root / "masks" / "scene.tif") as m,
    ):
        start = time.perf_counter()
        for r, c in offs:
            w = Window(int(c), int(r), patch, patch)
            img.read(window=w)
            m.read(1, window=w)
        return patches / (time.perf_counter() - start)


def batch_rates(patch: int, repeats: int) -> list[dict[str, Any]]:
    """Augmenting one batch (8 x 4 x patch^2 float32 + mask) on the CPU: satcnn vs kornia 0.9.

    satcnn: photometric as :func:`apply_photometric` (parameters drawn per sample, as the
    dataset does); geometric costs nothing extra (numpy views, copied once by the collate).
    kornia: the same transforms as ``AugmentationSequential`` on the batch (values in [0, 1]);
    its geometric ops (flips, rot90 of image and mask) each copy the batch.
    """
    import kornia.augmentation as K

    rng = np.random.default_rng(0)
    image = torch.from_numpy(rng.integers(0, 256, (BATCH, 4, patch, patch)).astype(np.float32))
    mask = (torch.rand(BATCH, 1, patch, patch) > 0.9).float()
    photometric = K.AugmentationSequential(
        K.RandomBrightness((0.9, 1.1), p=0.5),
        K.RandomContrast((0.9, 1.1), p=0.5),
        K.RandomGamma((0.9, 1.1), p=0.3),
        K.RandomGaussianNoise(std=0.0125, p=0.2),
    )
    geometric = K.AugmentationSequential(
        K.RandomHorizontalFlip(),
        K.RandomVerticalFlip(),
        K.RandomRotation90(times=(0, 3), p=0.5),
        data_keys=["input", "mask"],
    )

    def ours() -> None:
        params = np.stack([draw_photometric(rng) for _ in range(BATCH)])
        batch = {
            "image": image.clone(),
            "valid": torch.ones_like(mask),
            "photometric": torch.from_numpy(params),
            "seed": torch.arange(BATCH),
        }
        apply_photometric(batch, 255.0)

    def timed(fn: Any) -> float:
        fn()
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        return repeats * BATCH / (time.perf_counter() - start)

    ours_rate = timed(ours)
    kornia_photo = timed(lambda: photometric(image / 255.0))
    kornia_geo = timed(lambda: geometric(image / 255.0, mask))
    print(f"photometric on a batch: satcnn {ours_rate:.0f}, kornia {kornia_photo:.0f} patches/s")
    print(f"geometric on a batch: kornia {kornia_geo:.0f} patches/s (satcnn: views, no extra copy)")
    return [
        row("batch photometric, satcnn apply_photometric", ours_rate, "patches/s"),
        row(
            "batch photometric, kornia 0.9 AugmentationSequential",
            kornia_photo,
            "patches/s",
            "satcnn apply_photometric",
            kornia_photo / ours_rate,
        ),
        row("batch flips + rot90 (image + mask), kornia 0.9", kornia_geo, "patches/s"),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048, help="scene side in pixels")
    parser.add_argument("--steps", type=int, default=30, help="fit steps per kind (3 are warm-up)")
    parser.add_argument("--patches", type=int, default=800, help="patches timed per loader")
    parser.add_argument("--patch", type=int, default=PATCH, help="patch side")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-repeats", type=int, default=50, help="batches timed, satcnn vs kornia")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_scene(root, args.size)
        raw = rasterio_rate(root, args.size, args.patches, args.patch)
        rows.append(row("plain rasterio window reads (image + mask)", raw, "patches/s"))
        for kind in KINDS:
            rate = loader_rate(root, kind, args.patches, args.patch)
            rows.append(
                row(f"train loader, augment {kind}", rate, "patches/s", "plain rasterio reads", rate / raw)
            )
            print(f"loader {kind:15s} {rate:8.0f} patches/s  ({rate / raw:.2f} of raw reads)")
        base = fit_step(root, "none", args.steps, args.patch)
        rows.append(row("fit step, no augmentation", base, "s/step"))
        for kind in KINDS[1:]:
            t = fit_step(root, kind, args.steps, args.patch)
            rows.append(row(f"fit step, augment {kind}", t, "s/step", "fit step, no augmentation", t / base))
            print(f"fit step {kind:15s} {t:.3f} s ({t / base - 1:+.0%} vs none {base:.3f} s)")
        rows += batch_rates(args.patch, args.batch_repeats)
    write_json("augment", rows, vars(args), args.out_dir)


if __name__ == "__main__":
    main()
