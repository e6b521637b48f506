"""Cheap augmentation: per-sample geometric views and whole-batch photometric tensor ops.

Geometric transforms (the 8 symmetries of a square: flips and 90-degree rotations) are numpy
views of a sample's image, mask and valid mask, drawn from the sample's own seed
(``WindowRef.seed``), so ``valid`` follows the pixels exactly and no per-sample copy is made:
the one copy is the stack into the batch (:func:`satcnn.data.scene_windows.collate_samples`).

Photometric transforms (brightness/contrast, gamma, Gaussian noise, all bands alike) are drawn
per sample in the dataset too (a few scalars in ``batch["photometric"]``, noise seeded by
``batch["seed"]``), but applied to the whole batch as tensor ops by :func:`apply_photometric`,
called from the DataModule's ``on_after_batch_transfer`` hook: after the batch reaches the
device, so on a GPU they run there. Invalid pixels get :data:`satcnn.io.reader.FILL_VALUE`
back afterwards. The draws follow albumentations' ``RandomBrightnessContrast(0.1, 0.1, p=0.5)``,
``RandomGamma((90, 110), p=0.3)`` and ``GaussNoise(std_range=(0.005, 0.02), p=0.2)`` of
:func:`satcnn.data.transforms.build_augment`, on raw values scaled by ``max_value``.

Albumentations stays for pipelines that need interpolation or per-sample logic (affine,
elastic, crops and resizes: ``augment_kind: albumentations`` runs
:func:`~satcnn.data.transforms.build_augment` per sample in the DataLoader).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from satcnn.io.reader import FILL_VALUE

__all__ = ["PHOTOMETRIC_FIELDS", "apply_photometric", "augment_range", "draw_photometric", "flip_rotate"]

PHOTOMETRIC_FIELDS = ("brightness", "contrast", "gamma", "noise_std")
"""Columns of ``batch["photometric"]``; identity is ``(0, 1, 1, 0)``."""


def flip_rotate(arrays: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """Apply one random symmetry of the square to (..., H, W) arrays, as views.

    Horizontal flip, vertical flip and a 90-degree rotation, each with probability 0.5 (the
    draws of albumentations' ``HorizontalFlip``, ``VerticalFlip``, ``RandomRotate90`` at p=0.5);
    every array gets the same symmetry. Views may have negative strides: stack them with numpy.
    """
    hflip, vflip, rot = rng.random(3) < 0.5
    k = int(rng.integers(0, 4)) if rot else 0
    out = []
    for a in arrays:
        v = a[..., ::-1] if hflip else a
        v = v[..., ::-1, :] if vflip else v
        out.append(np.rot90(v, k, axes=(-2, -1)) if k else v)
    return out


def draw_photometric(rng: np.random.Generator) -> np.ndarray:
    """Draw one sample's photometric parameters (``PHOTOMETRIC_FIELDS``), float32 (4,)."""
    b_on, g_on, n_on = rng.random(3) < (0.5, 0.3, 0.2)
    brightness, contrast = rng.uniform(-0.1, 0.1, size=2)
    gamma = rng.uniform(0.9, 1.1)
    noise = rng.uniform(0.005, 0.02)
    return np.array(
        [
            brightness if b_on else 0.0,
            1.0 + contrast if b_on else 1.0,
            gamma if g_on else 1.0,
            noise if n_on else 0.0,
        ],
        dtype=np.float32,
    )


def apply_photometric(batch: dict[str, Any], max_value: float) -> dict[str, Any]:
    """Apply and remove ``batch["photometric"]`` (N, 4) and ``batch["seed"]`` (N,), in place.

    ``image`` (N, C, H, W) raw values become ``clip(x * contrast + brightness * max_value)``,
    then ``max_value * (x / max_value) ** gamma``, then ``+ N(0, noise_std * max_value)``
    (seeded per sample), clipped to ``[0, max_value]``; where ``valid`` is 0 the image holds the
    fill again. A batch without ``photometric`` is returned unchanged.
    """
    params = batch.pop("photometric", None)
    seeds = batch.pop("seed", None)
    if params is None:
        return batch
    x = batch["image"]
    p = params.to(device=x.device, dtype=x.dtype)[:, :, None, None, None]
    brightness, contrast, gamma = p[:, :3].unbind(1)
    x = (x * contrast + brightness * max_value).clamp_(0.0, max_value)
    if bool((params[:, 2] != 1).any()):
        x = x.div_(max_value).pow_(gamma).mul_(max_value)
    noisy = torch.nonzero(params[:, 3] > 0).flatten().tolist()
    if noisy:
        seed_list = seeds.tolist() if seeds is not None else [0] * len(params)
        for i in noisy:
            gen = torch.Generator(device=x.device).manual_seed(int(seed_list[i]))
            eps = torch.randn(x.shape[1:], generator=gen, device=x.device, dtype=x.dtype)
            x[i].add_(eps, alpha=float(params[i, 3]) * max_value)
        x.clamp_(0.0, max_value)
    valid = batch.get("valid")
    if valid is not None:
        x = x.masked_fill_(valid == 0, FILL_VALUE)
    batch["image"] = x
    return batch


def augment_range(dtype: str, mean: Sequence[float], std: Sequence[float]) -> float:
    """The value photometric augmentation treats as "full brightness".

    255 for uint8. For other types, the dtype's maximum would be far above the data (11-bit
    imagery in uint16 uses 0-2047 of 0-65535), and a brightness shift of -0.1 x 65535 would wipe
    a whole patch; so use the training data's range instead: the largest band mean + 4 std.
    """
    if np.dtype(dtype) == np.uint8:
        return 255.0
    return max(max(m + 4 * s for m, s in zip(mean, std, strict=True)), 1e-6)
