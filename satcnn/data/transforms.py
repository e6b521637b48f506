"""Albumentations pipelines that move image and mask together, for any number of bands.

Only transforms that treat every channel alike are used, so 4-band (RGB+NIR) and larger
stacks work: flips, ``RandomRotate90``, ``RandomBrightnessContrast``, ``RandomGamma`` and
``GaussNoise``. Colour-space transforms (``HueSaturationValue``, ``ColorJitter``,
``ToGray``...) assume RGB and are left out on purpose.

Samples carry raw digital numbers (uint8 0-255, uint16 up to 65535). uint8 images are
augmented as uint8 (albumentations' lookup-table fast path); other dtypes are divided by the
full range (``max_value``) to float ``[0, 1]``, which the photometric transforms of
albumentations 2 assume, and multiplied back afterwards. Geometric transforms are exact
either way; outputs are float32 raw values.

A sample's ``valid`` mask (its valid pixels, see :mod:`satcnn.io.reader`) moves with the image
and mask through every geometric transform; afterwards invalid pixels are set back to
``satcnn.io.reader.FILL_VALUE``, since photometric transforms (brightness, noise) would
otherwise move the fill away from what inference gives the model.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal

import albumentations as A
import numpy as np
import torch

from satcnn.checks import require_above
from satcnn.io.reader import FILL_VALUE

logger = logging.getLogger(__name__)

__all__ = ["AugmentKind", "SegmentationAugment", "build_augment"]

AugmentKind = Literal["none", "flips", "default"]


def build_augment(kind: AugmentKind = "default") -> A.Compose:
    """Build an albumentations pipeline for (image HWC float in [0, 1], mask HW) pairs.

    Args:
        kind: ``"none"`` (identity), ``"flips"`` (horizontal/vertical flips and 90-degree
            rotations: the 8 symmetries of a square) or ``"default"`` (``"flips"`` plus
            brightness/contrast, gamma and Gaussian noise applied to all bands alike).

    Raises:
        ValueError: unknown ``kind``.
    """
    geometric: list[A.BasicTransform] = [
        A.HorizontalFlip(p=0.5),
        A.VerticalFlip(p=0.5),
        A.RandomRotate90(p=0.5),
    ]
    if kind == "none":
        transforms: list[A.BasicTransform] = []
    elif kind == "flips":
        transforms = geometric
    elif kind == "default":
        transforms = [
            *geometric,
            A.RandomBrightnessContrast(brightness_limit=0.1, contrast_limit=0.1, p=0.5),
            A.RandomGamma(gamma_limit=(90, 110), p=0.3),
            A.GaussNoise(std_range=(0.005, 0.02), p=0.2),
        ]
    else:
        raise ValueError(f"unknown augmentation kind {kind!r}; expected 'none', 'flips' or 'default'")
    return A.Compose(transforms)


class SegmentationAugment:
    """Apply an albumentations pipeline to a sample dict with CHW image and mask.

    A ``valid`` mask (1, H, W), when present, is transformed with them, and invalid pixels of
    the result hold ``FILL_VALUE``. The sample keeps its other keys (``crs``, ``bounds``)
    unchanged: they describe the source window, whatever flips were applied to its pixels.

    Args:
        transform: pipeline from :func:`build_augment` (or any ``A.Compose``).
        max_value: full range of the raw values, e.g. 255 for uint8 and 65535 for uint16;
            images are scaled by ``1 / max_value`` for the pipeline and back afterwards.
    """

    def __init__(self, transform: A.Compose, max_value: float = 255.0) -> None:
        require_above("max_value", max_value)
        self.transform = transform
        self.max_value = float(max_value)

    def __call__(self, sample: Mapping[str, Any]) -> dict[str, Any]:
        """Return a new sample with ``image`` (C, H, W), ``mask`` and ``valid`` (1, H, W) transformed.

        Inputs may be numpy arrays or torch tensors (uint8 images are augmented in uint8,
        which is several times faster); outputs are float32 torch tensors. ``valid`` is optional.
        """
        image = _to_numpy(sample["image"])
        mask = _to_numpy(sample["mask"])
        if image.ndim != 3:
            raise ValueError(f"image must be (C, H, W), got shape {image.shape}")
        mask_hw = mask[0] if mask.ndim == 3 else mask
        extra: dict[str, Any] = {}
        if "valid" in sample:
            valid = _to_numpy(sample["valid"])
            extra["masks"] = [np.ascontiguousarray(valid[0] if valid.ndim == 3 else valid)]
        hwc = np.ascontiguousarray(image.transpose(1, 2, 0))
        # uint8 goes through as is (albumentations' fast lookup-table path, same 0-255 scale);
        # anything else is scaled to float [0, 1] and back.
        native = hwc.dtype == np.uint8 and self.max_value == 255.0
        out = self.transform(
            image=hwc if native else hwc.astype(np.float32) / self.max_value,
            mask=np.ascontiguousarray(mask_hw),
            **extra,
        )
        result = dict(sample)
        aug_image = np.asarray(out["image"], dtype=np.float32) * (1.0 if native else self.max_value)
        result["image"] = torch.from_numpy(np.ascontiguousarray(aug_image.transpose(2, 0, 1)))
        result["mask"] = torch.from_numpy(np.ascontiguousarray(out["mask"], dtype=np.float32)[None])
        if extra:
            valid_out = np.ascontiguousarray(out["masks"][0], dtype=np.float32)[None]
            result["image"][:, torch.from_numpy(valid_out[0] == 0)] = FILL_VALUE
            result["valid"] = torch.from_numpy(valid_out)
        return result

    def __repr__(self) -> str:
        return f"SegmentationAugment({self.transform!r}, max_value={self.max_value})"


def _to_numpy(x: Any) -> np.ndarray[Any, Any]:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)
