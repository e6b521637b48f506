"""Cheap augmentation: geometric views per sample, photometric tensor ops per batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from satcnn.data.batch_augment import apply_photometric, draw_photometric, flip_rotate
from satcnn.io.reader import FILL_VALUE
from tests.factories import make_dm, set_nodata, window_of, write_scene


def _symmetries(a: np.ndarray) -> list[np.ndarray]:
    return [np.rot90(f, k, axes=(-2, -1)) for f in (a, a[..., ::-1]) for k in range(4)]


def test_flip_rotate_gives_views_with_one_symmetry_for_all_arrays() -> None:
    image = np.arange(3 * 8 * 8, dtype=np.float32).reshape(3, 8, 8)
    valid = np.zeros((1, 8, 8), np.float32)
    valid[0, :2, :5] = 1  # asymmetric: every symmetry moves it somewhere else
    seen = set()
    for seed in range(40):
        out_image, out_valid = flip_rotate([image, valid], np.random.default_rng(seed))
        assert np.shares_memory(out_image, image) and np.shares_memory(out_valid, valid)  # views, no copy
        k = next(i for i, s in enumerate(_symmetries(image)) if np.array_equal(s, out_image))
        np.testing.assert_array_equal(out_valid, _symmetries(valid)[k])  # valid follows the pixels
        seen.add(k)
    assert seen == set(range(8))


def _batch(n: int = 3, seed: int = 0) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(seed)
    valid = torch.ones(n, 1, 16, 16)
    valid[:, :, :4, :6] = 0
    image = torch.from_numpy(rng.uniform(20, 230, (n, 4, 16, 16)).astype(np.float32)) * valid
    return {"image": image, "valid": valid}


def test_photometric_identity_leaves_the_batch_and_drops_its_keys() -> None:
    batch = _batch()
    expected = batch["image"].clone()
    batch["photometric"] = torch.tensor([[0.0, 1.0, 1.0, 0.0]] * 3)
    batch["seed"] = torch.tensor([1, 2, 3])
    out = apply_photometric(batch, 255.0)
    assert "photometric" not in out and "seed" not in out
    torch.testing.assert_close(out["image"], expected)


def test_photometric_is_per_sample_reproducible_keeps_range_and_fill() -> None:
    params = torch.tensor([[0.08, 1.05, 1.08, 0.02], [-0.05, 0.95, 0.92, 0.01], [0.0, 1.0, 1.0, 0.015]])
    seeds = torch.tensor([11, 12, 13])
    whole = apply_photometric({**_batch(), "photometric": params, "seed": seeds}, 255.0)["image"]
    for i in range(3):  # each sample alone gives the same pixels: parameters and noise are its own
        one = {k: v[i : i + 1] for k, v in _batch().items()}
        alone = apply_photometric({**one, "photometric": params[i : i + 1], "seed": seeds[i : i + 1]}, 255.0)
        torch.testing.assert_close(alone["image"][0], whole[i])
    invalid = _batch()["valid"] == 0
    assert (whole[invalid.expand_as(whole)] == FILL_VALUE).all()
    assert float(whole.min()) >= 0 and float(whole.max()) <= 255
    assert not torch.allclose(whole, _batch()["image"])
    # brightness +0.08, contrast 1.05 brighten sample 0 on every band
    valid = ~invalid[0, 0]
    assert (whole[0][:, valid].mean(1) > _batch()["image"][0][:, valid].mean(1)).all()


def test_draw_photometric_matches_albumentations_probabilities() -> None:
    draws = np.stack([draw_photometric(np.random.default_rng(s)) for s in range(2000)])
    assert 0.45 < (draws[:, 0] != 0).mean() < 0.55 and 0.25 < (draws[:, 2] != 1).mean() < 0.35
    assert 0.16 < (draws[:, 3] != 0).mean() < 0.24 and np.abs(draws[:, 0]).max() <= 0.1


def test_datamodule_augments_reproducibly_and_valid_follows_the_image(tmp_path: Path) -> None:
    image, _ = write_scene(tmp_path, "a", height=64, width=64, seed=1)
    valid_px = set_nodata(tmp_path, "a", image, (slice(10, 30), slice(5, 60)))

    def batches(kind: str) -> list[dict[str, torch.Tensor]]:
        dm = make_dm(str(tmp_path), batch_size=4, train_samples_per_epoch=12, augment_kind=kind)
        dm.setup()
        return [dm.on_after_batch_transfer(b, 0) for b in dm.train_dataloader()]

    first, again = batches("default"), batches("default")
    flips = batches("flips")
    changed = 0
    for b, b2, f in zip(first, again, flips, strict=True):
        assert "photometric" not in b
        torch.testing.assert_close(b["image"], b2["image"])  # same seed, same pixels
        torch.testing.assert_close(f["valid"], b["valid"])  # photometric leaves the geometry alone
        for x, v, bounds in zip(f["image"], f["valid"], f["bounds"], strict=True):
            r, c = window_of(bounds, 32)
            raw = np.where(valid_px, image, 0).astype(np.float32)[:, r : r + 32, c : c + 32]
            sym = _symmetries(np.concatenate([raw, valid_px[None, r : r + 32, c : c + 32]]))
            match = [s for s in sym if np.array_equal(s, np.concatenate([x.numpy(), v.numpy()]))]
            assert match  # image and valid moved by one and the same symmetry
        assert (b["image"][(b["valid"] == 0).expand_as(b["image"])] == FILL_VALUE).all()
        changed += int(not torch.equal(b["image"], f["image"]))
    assert changed > 0  # photometric changed some batches
