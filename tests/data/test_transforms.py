"""Augmentations move image and mask together and keep bands, dtype and raw value range."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from satcnn.data.transforms import SegmentationAugment, build_augment
from satcnn.io.reader import FILL_VALUE


def marked_sample(size: int = 16, bands: int = 4, scale: float = 1.0) -> dict[str, object]:
    """Zero image with one marked pixel (band b = (b + 1) * 10 * scale) and a mask marking it."""
    image = np.zeros((bands, size, size), dtype=np.float32)
    image[:, 3, 11] = (np.arange(bands) + 1) * 10 * scale
    mask = np.zeros((1, size, size), dtype=np.float32)
    mask[0, 3, 11] = 1
    return {
        "image": torch.from_numpy(image),
        "mask": torch.from_numpy(mask),
        "crs": "EPSG:32633",
        "bounds": (0, 1, 2, 3),
    }


@pytest.mark.parametrize(("scale", "dtype"), [(1.0, np.uint8), (1.0, np.float32), (1000.0, np.float32)])
def test_geometric_augment_keeps_image_and_mask_aligned(scale: float, dtype: type) -> None:
    max_value = 255.0 if scale == 1.0 else 65535.0
    aug = SegmentationAugment(build_augment("flips"), max_value=max_value)
    sample = marked_sample(scale=scale)
    sample["image"] = sample["image"].numpy().astype(dtype)  # type: ignore[attr-defined]
    sample["mask"] = sample["mask"].numpy().astype(np.uint8)  # type: ignore[attr-defined]
    positions = set()
    for seed in range(24):
        aug.transform.set_random_seed(seed)
        out = aug(sample)
        image, mask = out["image"], out["mask"]
        assert image.shape == (4, 16, 16) and mask.shape == (1, 16, 16)
        assert image.dtype == torch.float32 and mask.dtype == torch.float32
        (r, c) = torch.nonzero(mask[0]).tolist()[0]
        assert torch.count_nonzero(mask) == 1
        # every band's only non-zero pixel sits where the mask is, with its raw value kept
        for b in range(4):
            assert torch.nonzero(image[b]).tolist() == [[r, c]]
            assert float(image[b, r, c]) == pytest.approx((b + 1) * 10 * scale, rel=1e-5)
        positions.add((r, c))
        assert out["crs"] == "EPSG:32633" and out["bounds"] == (0, 1, 2, 3)
    assert len(positions) >= 4  # flips and rotations really happen


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_default_augment_changes_values_on_all_bands(dtype: type) -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(20, 230, size=(4, 32, 32)).astype(dtype)
    mask = (rng.random((1, 32, 32)) > 0.5).astype(np.float32)
    aug = SegmentationAugment(build_augment("default"), max_value=255.0)
    photometric = 0
    for seed in range(30):
        aug.transform.set_random_seed(seed)
        out = aug({"image": image, "mask": mask})
        assert out["image"].shape == (4, 32, 32) and out["image"].dtype == torch.float32
        assert float(out["image"].min()) >= 0 and float(out["image"].max()) <= 255.0 + 1e-3
        assert set(torch.unique(out["mask"]).tolist()) <= {0.0, 1.0}
        assert int(out["mask"].sum()) == int(mask.sum())  # geometry only moves mask pixels
        # geometric transforms permute pixels; a photometric one changes the multiset of values
        if not np.allclose(
            np.sort(out["image"].numpy().ravel()), np.sort(image.ravel()).astype(np.float32), atol=1e-3
        ):
            photometric += 1
    assert photometric > 0


def test_none_is_identity_and_unknown_kind_fails() -> None:
    sample = marked_sample()
    out = SegmentationAugment(build_augment("none"))(sample)
    torch.testing.assert_close(out["image"], sample["image"])
    torch.testing.assert_close(out["mask"], sample["mask"])
    with pytest.raises(ValueError, match="unknown augmentation kind"):
        build_augment("rainbow")  # type: ignore[arg-type]


@pytest.mark.slow
def test_uint16_brightness_shift_keeps_the_image() -> None:
    """11-bit data in uint16: augmentation scales by the data's range, not by 65535."""
    import albumentations as A

    from satcnn.data.scenes import augment_range

    assert augment_range("uint8", [100.0], [10.0]) == 255.0
    top = augment_range("uint16", [500.0, 800.0], [100.0, 50.0])
    assert top == 1000.0
    darker = A.Compose([A.RandomBrightnessContrast(brightness_limit=(-0.1, -0.1), contrast_limit=0, p=1)])
    image = torch.full((4, 16, 16), 500.0)
    out = SegmentationAugment(darker, max_value=top)({"image": image, "mask": torch.zeros(1, 16, 16)})
    assert 350 < float(out["image"].mean()) < 450  # 500 - 0.1 x 1000, not wiped to 0


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_valid_mask_moves_with_the_image_and_invalid_pixels_keep_the_fill(dtype: type) -> None:
    rng = np.random.default_rng(2)
    image = rng.integers(20, 230, size=(4, 16, 16)).astype(dtype)
    valid = np.ones((1, 16, 16), np.uint8)
    valid[0, :5, :9] = 0  # an invalid corner block (not symmetric under any flip or rotation)
    image[:, ~valid[0].astype(bool)] = FILL_VALUE
    mask = (rng.random((1, 16, 16)) > 0.5).astype(np.uint8)
    aug = SegmentationAugment(build_augment("default"), max_value=255.0)
    flips = build_augment("flips")
    moved = 0
    for seed in range(30):
        aug.transform.set_random_seed(seed)
        out = aug({"image": image, "mask": mask, "valid": valid})
        flips.set_random_seed(seed)  # the same geometry without the photometric transforms
        ref = flips(image=mask[0], mask=valid[0])
        assert out["valid"].shape == (1, 16, 16) and out["valid"].dtype == torch.float32
        np.testing.assert_array_equal(out["valid"][0].numpy(), ref["mask"])
        np.testing.assert_array_equal(out["mask"][0].numpy(), ref["image"])
        invalid = out["valid"][0] == 0
        assert int(invalid.sum()) == 45
        assert (out["image"][:, invalid] == FILL_VALUE).all()  # photometric shifts do not reach the fill
        assert (out["image"][:, ~invalid] > 0).all()
        moved += int(not np.array_equal(out["valid"][0].numpy(), valid[0]))
    assert moved > 0
