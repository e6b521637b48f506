"""Road scene DataModule: validation, split, batch contract, grid coverage, band stats."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rasterio.crs import CRS
from rasterio.transform import from_origin
from rasterio.windows import from_bounds

from satcnn.data.normalization import RunningStats
from satcnn.data.samplers import GridWindowSampler
from satcnn.data.scenes import RoadSceneDataModule, collate_samples, find_scenes
from satcnn.errors import ConfigError, InputFileNotFoundError, RasterError
from tests.factories import SCENE_ORIGIN, make_dm, set_nodata, window_of, write_scene

# ---------------------------------------------------------------- RunningStats


@pytest.mark.parametrize("as_tensor", [False, True])
def test_running_stats_matches_numpy_over_chunks(as_tensor: bool) -> None:
    rng = np.random.default_rng(1)
    data = rng.normal(
        loc=[[[[100.0]], [[5.0]], [[-3.0]]]], scale=[[[[20.0]], [[0.1]], [[7.0]]]], size=(23, 3, 9, 7)
    )
    stats = RunningStats(3)
    for lo, hi in [(0, 1), (1, 8), (8, 20), (20, 23)]:
        chunk = data[lo:hi]
        stats.update(torch.from_numpy(chunk) if as_tensor else chunk)
    stats.update(data[0, :, :0])  # an empty chunk changes nothing
    flat = data.transpose(1, 0, 2, 3).reshape(3, -1)
    np.testing.assert_allclose(stats.mean, flat.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(stats.std, flat.std(axis=1), rtol=1e-10)
    assert stats.count == flat.shape[1]


def test_running_stats_chw_uint8_and_merge() -> None:
    rng = np.random.default_rng(2)
    a = rng.integers(0, 256, size=(4, 30, 30), dtype=np.uint8)
    b = rng.integers(0, 256, size=(2, 4, 10, 10), dtype=np.uint8)
    left, right = RunningStats(4), RunningStats(4)
    left.update(a)
    right.update(b)
    left.merge(right)
    flat = np.concatenate([a.reshape(4, -1), b.transpose(1, 0, 2, 3).reshape(4, -1)], axis=1).astype(
        np.float64
    )
    np.testing.assert_allclose(left.mean, flat.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(left.std, flat.std(axis=1), rtol=1e-10)


def test_running_stats_rejects_bad_input() -> None:
    stats = RunningStats(4)
    with pytest.raises(ValueError, match="no data"):
        _ = stats.mean
    with pytest.raises(ValueError, match="C=4"):
        stats.update(np.zeros((3, 5, 5)))
    with pytest.raises(ValueError, match="C=4"):
        stats.update(np.zeros((5, 5)))


# ---------------------------------------------------------------- validation


def test_find_scenes_reads_metadata(tmp_path: Path) -> None:
    write_scene(tmp_path, "b", seed=1)
    write_scene(tmp_path, "a", seed=2, height=70)
    scenes = find_scenes(tmp_path)
    assert [s.name for s in scenes] == ["a", "b"]
    assert (scenes[0].height, scenes[0].width, scenes[0].count, scenes[0].dtype) == (70, 80, 4, "uint8")
    assert CRS.from_wkt(scenes[0].crs_wkt) == CRS.from_epsg(32633)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mask_epsg": 32634}, "different CRS"),
        ({"mask_res": 1.0}, "different transforms"),
        ({"mask_shape": (90, 80)}, "different shapes"),
    ],
)
def test_mismatched_mask_names_both_files(tmp_path: Path, kwargs: dict[str, object], match: str) -> None:
    write_scene(tmp_path, "s1", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(RasterError, match=match) as info:
        make_dm(str(tmp_path), patch_size=32).setup()
    assert "images/s1.tif" in str(info.value) and "masks/s1.tif" in str(info.value)


def test_missing_mask_and_no_scenes(tmp_path: Path) -> None:
    with pytest.raises(InputFileNotFoundError, match="images/"):
        make_dm(str(tmp_path / "nowhere")).setup()
    (tmp_path / "images").mkdir()
    with pytest.raises(InputFileNotFoundError, match="no scenes found"):
        make_dm(str(tmp_path)).setup()
    write_scene(tmp_path, "lonely", write_mask=False)
    with pytest.raises(InputFileNotFoundError, match=r"masks/lonely\.tif"):
        make_dm(str(tmp_path), patch_size=32).setup()


def test_band_count_mismatch_across_scenes(tmp_path: Path) -> None:
    write_scene(tmp_path, "a", count=4)
    write_scene(tmp_path, "b", count=3)
    with pytest.raises(RasterError, match="band count differs") as info:
        make_dm(str(tmp_path), patch_size=32).setup()
    assert "a.tif" in str(info.value) and "b.tif" in str(info.value)


def test_bands_length_must_match_files(tmp_path: Path) -> None:
    write_scene(tmp_path, "a", count=3)
    with pytest.raises(ConfigError, match="3 bands"):
        make_dm(str(tmp_path), patch_size=32).setup()
    dm = make_dm(str(tmp_path), patch_size=32, bands=["r", "g", "b"])
    dm.setup()
    assert dm.in_channels == 3


def test_patch_larger_than_scene(tmp_path: Path) -> None:
    write_scene(tmp_path, "a", height=40, width=200)
    write_scene(tmp_path, "b", height=200, width=200)
    with pytest.raises(RasterError, match="patch_size 64 is larger") as info:
        make_dm(str(tmp_path), patch_size=64).setup()
    assert "a.tif" in str(info.value)


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="val_overlap"):
        make_dm("x", patch_size=32, val_overlap=32)
    with pytest.raises(ConfigError, match="val_scenes is empty"):
        make_dm("x", val_scenes=[])


def test_setup_is_idempotent(tmp_path: Path) -> None:
    write_scene(tmp_path, "a")
    dm = make_dm(str(tmp_path), patch_size=32)
    dm.setup("fit")
    scenes = dm.scenes
    (tmp_path / "images" / "a.tif").unlink()  # a second setup must not look at the files again
    dm.setup("test")
    assert dm.scenes is scenes


# ---------------------------------------------------------------- split


def _split_names(dm: RoadSceneDataModule) -> dict[str, set[str]]:
    return {k: {dm.scenes[r.scene].name for r in v} for k, v in dm.regions.items()}


def test_seeded_split_is_disjoint_and_reproducible(tmp_path: Path) -> None:
    for i in range(6):
        write_scene(tmp_path, f"s{i}", height=40, width=40, seed=i)
    splits = []
    for _ in range(2):
        dm = make_dm(str(tmp_path), patch_size=32, val_fraction=0.2, seed=3)
        dm.setup()
        splits.append(_split_names(dm))
    a = splits[0]
    assert a == splits[1]
    assert len(a["val"]) == 1 and len(a["test"]) == 1 and len(a["train"]) == 4
    assert not (a["train"] & a["val"]) and not (a["train"] & a["test"]) and not (a["val"] & a["test"])
    others = set()
    for seed in range(8):
        dm = make_dm(str(tmp_path), patch_size=32, seed=seed)
        dm.setup()
        others.add(frozenset(_split_names(dm)["val"]))
    assert len(others) > 1  # the seed drives the split


def test_named_and_two_scene_splits(tmp_path: Path) -> None:
    write_scene(tmp_path, "x", height=40, width=40)
    write_scene(tmp_path, "y", height=40, width=40, seed=1)
    dm = make_dm(str(tmp_path), patch_size=32)
    dm.setup()
    names = _split_names(dm)
    assert len(names["train"]) == 1 and names["val"] == names["test"] and names["val"] != names["train"]
    dm = make_dm(str(tmp_path), patch_size=32, val_scenes=["x"])
    dm.setup()
    assert _split_names(dm) == {"train": {"y"}, "val": {"x"}, "test": {"x"}}
    with pytest.raises(ConfigError, match="unknown scenes"):
        make_dm(str(tmp_path), patch_size=32, test_scenes=["z"]).setup()
    with pytest.raises(ConfigError, match="no scene left for training"):
        make_dm(str(tmp_path), patch_size=32, val_scenes=["x"], test_scenes=["y"]).setup()


def test_single_scene_uses_disjoint_row_bands(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_scene(tmp_path, "only", height=200, width=64)
    dm = make_dm(str(tmp_path), patch_size=32, val_fraction=0.2)
    dm.setup()
    (train,), (val,), (test,) = dm.regions["train"], dm.regions["val"], dm.regions["test"]
    assert (train.row_off, train.height) == (0, 120)
    assert (val.row_off, val.height) == (120, 40) and (test.row_off, test.height) == (160, 40)
    bounds = torch.cat([b["bounds"] for b in dm.val_dataloader()])
    top = SCENE_ORIGIN[1] - 120 * 0.5
    assert float(bounds[:, 3].max()) <= top and float(bounds[:, 1].min()) >= SCENE_ORIGIN[1] - 160 * 0.5

    small = tmp_path / "small"
    write_scene(small, "only", height=64, width=64)
    dm = make_dm(str(small), patch_size=32)
    with caplog.at_level(logging.WARNING):
        dm.setup()
    assert "whole scene" in caplog.text
    assert dm.regions["train"] == dm.regions["val"] == dm.regions["test"]


# ---------------------------------------------------------------- batches


def test_batches_carry_raw_values_crs_and_bounds(tmp_path: Path) -> None:
    image, mask = write_scene(tmp_path, "a", dtype="uint16", seed=5)
    dm = make_dm(
        str(tmp_path), patch_size=32, batch_size=4, train_samples_per_epoch=10, augment=False, val_overlap=8
    )
    dm.setup()
    transform = from_origin(*SCENE_ORIGIN, 0.5, 0.5)
    for loader in (dm.train_dataloader(), dm.val_dataloader()):
        loaded = list(loader)
        # the loader keeps the file's type; the transfer hook (run by Lightning on the device) makes float32
        assert loaded[0]["image"].dtype == torch.uint16 and loaded[0]["mask"].dtype == torch.uint8
        assert loaded[0]["valid"].dtype == torch.uint8
        raw = [b["image"].clone() for b in loaded]
        batches = [dm.on_after_batch_transfer(b, 0) for b in loaded]
        assert all(torch.equal(b["image"], r.float()) for b, r in zip(batches, raw, strict=True))
        batch = batches[0]
        n = len(batch["crs"])
        assert n == min(4, sum(len(b["crs"]) for b in batches))
        assert batch["image"].dtype == torch.float32 and batch["image"].shape == (n, 4, 32, 32)
        assert batch["mask"].dtype == torch.float32 and batch["mask"].shape == (n, 1, 32, 32)
        assert batch["valid"].dtype == torch.float32
        assert batch["bounds"].dtype == torch.float64 and batch["bounds"].shape == (n, 4)
        assert CRS.from_wkt(batch["crs"][0]) == CRS.from_epsg(32633)
        for b in batches:
            for i in range(len(b["crs"])):
                win = (
                    from_bounds(*b["bounds"][i].tolist(), transform=transform).round_offsets().round_lengths()
                )
                r, c = win.row_off, win.col_off
                np.testing.assert_array_equal(b["image"][i].numpy(), image[:, r : r + 32, c : c + 32])
                np.testing.assert_array_equal(b["mask"][i, 0].numpy(), (mask[r : r + 32, c : c + 32] > 0))
    assert sum(len(b["crs"]) for b in dm.train_dataloader()) == 10
    assert float(batch["image"].max()) > 255  # raw uint16 DN, not scaled


def test_grid_covers_every_pixel_of_val_scenes(tmp_path: Path) -> None:
    write_scene(tmp_path, "a", height=97, width=75)
    write_scene(tmp_path, "b", height=50, width=61, seed=1)
    write_scene(tmp_path, "c", height=40, width=40, seed=2)  # the training scene
    dm = make_dm(
        str(tmp_path), patch_size=32, batch_size=5, val_overlap=6, val_scenes=["a", "b"], test_scenes=["a"]
    )
    dm.setup()
    shapes = {"a": (97, 75), "b": (50, 61)}
    cover = {k: np.zeros(v, dtype=int) for k, v in shapes.items()}
    expected_bounds = []
    loader = dm.val_dataloader()
    for ref in loader.sampler:
        name = dm.scenes[ref.scene].name
        assert name in shapes
        assert ref.row_off + 32 <= shapes[name][0] and ref.col_off + 32 <= shapes[name][1]
        cover[name][ref.row_off : ref.row_off + 32, ref.col_off : ref.col_off + 32] += 1
        x0, y1 = SCENE_ORIGIN[0] + ref.col_off * 0.5, SCENE_ORIGIN[1] - ref.row_off * 0.5
        expected_bounds.append([x0, y1 - 16.0, x0 + 16.0, y1])
    assert cover["a"].min() >= 1 and cover["b"].min() >= 1
    assert cover["a"].max() <= 4  # overlapping grid, not a dense sliding window
    seen = torch.cat([b["bounds"] for b in loader])
    np.testing.assert_allclose(seen.numpy(), np.array(expected_bounds))


@pytest.mark.parametrize(("patch", "overlap", "world"), [(32, 6, 1), (32, 6, 2), (24, 9, 5), (16, 0, 2)])
def test_valid_masks_own_every_val_pixel_once(tmp_path: Path, patch: int, overlap: int, world: int) -> None:
    write_scene(tmp_path, "a", height=97, width=75)
    write_scene(tmp_path, "b", height=50, width=61, seed=1)
    write_scene(tmp_path, "c", height=40, width=40, seed=2)  # the training scene
    dm = make_dm(
        str(tmp_path),
        patch_size=patch,
        batch_size=4,
        val_overlap=overlap,
        val_scenes=["a", "b"],
        test_scenes=["a"],
    )
    dm.setup()
    shapes = {"a": (97, 75), "b": (50, 61)}
    owned = {k: np.zeros(v, dtype=int) for k, v in shapes.items()}
    transform = from_origin(*SCENE_ORIGIN, 0.5, 0.5)
    dataset = dm.val_dataloader().dataset
    for rank in range(world):  # every rank's shard, padding repeats included
        sampler = GridWindowSampler(dm.regions["val"], patch, overlap, num_replicas=world, rank=rank)
        refs = list(sampler)
        batch = collate_samples([dataset[ref] for ref in refs])
        assert batch["valid"].shape == batch["mask"].shape and batch["valid"].dtype == torch.uint8
        assert torch.isin(batch["valid"], torch.tensor([0, 1], dtype=torch.uint8)).all()
        for ref, bounds, valid in zip(refs, batch["bounds"], batch["valid"], strict=True):
            win = from_bounds(*bounds.tolist(), transform=transform).round_offsets().round_lengths()
            r, c = win.row_off, win.col_off
            owned[dm.scenes[ref.scene].name][r : r + patch, c : c + patch] += valid[0].numpy().astype(int)
    for name in shapes:
        assert (owned[name] == 1).all(), name
    val_batch = next(iter(dm.val_dataloader()))
    assert val_batch["valid"].shape == val_batch["mask"].shape
    # Training windows own all their pixels; these scenes have no nodata, so all are valid.
    assert (next(iter(dm.train_dataloader()))["valid"] == 1).all()


def test_augmented_training_batches_and_workers(tmp_path: Path) -> None:
    write_scene(tmp_path, "a", height=64, width=64)
    dm = make_dm(
        str(tmp_path), patch_size=32, batch_size=3, train_samples_per_epoch=6, num_workers=2, augment=True
    )
    dm.setup()
    batches = [dm.on_after_batch_transfer(b, 0) for b in dm.train_dataloader()]
    assert sum(b["image"].shape[0] for b in batches) == 6
    for b in batches:
        assert b["image"].dtype == torch.float32 and b["mask"].dtype == torch.float32
        assert b["bounds"].dtype == torch.float64 and len(b["crs"]) == len(b["image"])
        assert b["image"].shape[1:] == (4, 32, 32) and torch.isin(b["mask"], torch.tensor([0.0, 1.0])).all()
        assert float(b["image"].min()) >= 0 and float(b["image"].max()) <= 255


# ---------------------------------------------------------------- band stats


def test_band_stats_use_training_scenes_only(tmp_path: Path) -> None:
    train_a, _ = write_scene(tmp_path, "a", seed=1)
    train_b, _ = write_scene(tmp_path, "b", seed=2, height=50)
    write_scene(tmp_path, "v", seed=3, offset=50)  # brighter: would shift the mean if it leaked in
    write_scene(tmp_path, "t", seed=4, offset=50)
    dm = make_dm(str(tmp_path), patch_size=32, val_scenes=["v"], test_scenes=["t"])
    mean, std = dm.band_stats()
    flat = np.concatenate([train_a.reshape(4, -1), train_b.reshape(4, -1)], axis=1).astype(np.float64)
    np.testing.assert_allclose(mean, flat.mean(axis=1), rtol=1e-9)
    np.testing.assert_allclose(std, flat.std(axis=1), rtol=1e-9)
    assert dm.band_stats() == (mean, std)

    decimated = make_dm(str(tmp_path), patch_size=32, val_scenes=["v"], test_scenes=["t"])
    dmean, dstd = decimated.band_stats(max_pixels_per_scene=500)
    np.testing.assert_allclose(dmean, flat.mean(axis=1), rtol=0.1)
    np.testing.assert_allclose(dstd, flat.std(axis=1), rtol=0.15)
    assert not np.allclose(dmean, mean, rtol=1e-9)  # it really read fewer pixels


# ---------------------------------------------------------------- the pixel contract


def test_nodata_pixels_hold_the_fill_and_are_not_valid(tmp_path: Path) -> None:
    train_image, _ = write_scene(tmp_path, "a", height=64, width=64, seed=1)
    val_image, _ = write_scene(tmp_path, "v", height=48, width=40, seed=2)
    train_valid = set_nodata(tmp_path, "a", train_image, (slice(10, 30), slice(5, 60)))
    val_valid = set_nodata(tmp_path, "v", val_image, (slice(0, 20), slice(0, 40)))
    dm = make_dm(
        str(tmp_path),
        batch_size=4,
        train_samples_per_epoch=12,
        augment=False,
        val_scenes=["v"],
        test_scenes=["v"],
    )
    dm.setup()
    for loader, image, valid_px in (
        (dm.train_dataloader(), train_image, train_valid),
        (dm.val_dataloader(), val_image, val_valid),
    ):
        owned = np.zeros(valid_px.shape, int)
        for batch in loader:
            for x, v, bounds in zip(batch["image"], batch["valid"], batch["bounds"], strict=True):
                r, c = window_of(bounds, 32)
                expect_valid = valid_px[r : r + 32, c : c + 32]
                assert not (v[0].numpy().astype(bool) & ~expect_valid).any()  # invalid is never valid
                raw = image[:, r : r + 32, c : c + 32].astype(np.float32)
                np.testing.assert_array_equal(x.numpy(), np.where(expect_valid, raw, 0.0))
                owned[r : r + 32, c : c + 32] += v[0].numpy().astype(int)
        if isinstance(loader.sampler, GridWindowSampler):
            np.testing.assert_array_equal(owned, valid_px.astype(int))  # valid pixels owned once
        else:
            assert owned[valid_px].sum() > 0 and owned[~valid_px].sum() == 0


def test_band_stats_leave_out_nodata(tmp_path: Path) -> None:
    image, _ = write_scene(tmp_path, "a", seed=1)
    write_scene(tmp_path, "v", seed=3)
    valid = set_nodata(tmp_path, "a", image, (slice(0, 40), slice(0, 80)))
    dm = make_dm(str(tmp_path), val_scenes=["v"], test_scenes=["v"])
    mean, std = dm.band_stats()
    flat = image[:, valid].astype(np.float64)
    np.testing.assert_allclose(mean, flat.mean(axis=1), rtol=1e-9)
    np.testing.assert_allclose(std, flat.std(axis=1), rtol=1e-9)


def test_all_nodata_training_area_names_the_file(tmp_path: Path) -> None:
    image, _ = write_scene(tmp_path, "a", seed=1)
    write_scene(tmp_path, "v", seed=3)
    set_nodata(tmp_path, "a", image, (slice(None), slice(None)))
    dm = make_dm(str(tmp_path), val_scenes=["v"], test_scenes=["v"])
    with pytest.raises(RasterError, match=r"a\.tif is nodata or masked"):
        dm.band_stats()


def test_alpha_beyond_the_bands_masks_training_windows(tmp_path: Path) -> None:
    image, _ = write_scene(tmp_path, "a", height=64, width=64)  # 4-band uint8: GDAL tags band 4 alpha
    image[3] = 255
    image[3, 40:, :] = 0
    with rasterio.open(tmp_path / "images" / "a.tif", "r+") as ds:
        ds.write(image)
        assert ds.colorinterp[3] == rasterio.enums.ColorInterp.alpha
    rgb = make_dm(str(tmp_path), bands=["red", "green", "blue"], augment=False, batch_size=64)
    rgb.setup()
    batch = next(iter(rgb.train_dataloader()))
    assert batch["image"].shape[1] == 3
    for x, v, bounds in zip(batch["image"], batch["valid"], batch["bounds"], strict=True):
        r, c = window_of(bounds, 32)
        expect = np.ones((64, 64), bool)
        expect[40:] = False
        np.testing.assert_array_equal(v[0].numpy().astype(bool), expect[r : r + 32, c : c + 32])
        assert (x[:, v[0] == 0] == 0).all()
    rgbn = make_dm(str(tmp_path), augment=False, batch_size=64)  # consumes band 4: data, no mask
    rgbn.setup()
    assert (next(iter(rgbn.train_dataloader()))["valid"] == 1).all()


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
@pytest.mark.parametrize("kind", ["none", "flips", "default"])
def test_batched_reads_equal_the_stacked_samples(tmp_path: Path, kind: str, dtype: str) -> None:
    """The loaders' batched fetch (``__getitems__``, read straight into the batch) gives exactly the
    batch that stacking ``__getitem__`` samples gives: pixels, fill, valid, flips and draws."""
    for i, name in enumerate("abc"):
        write_scene(tmp_path, name, dtype=dtype, seed=i)
    with rasterio.open(tmp_path / "images" / "a.tif", "r+") as ds:  # a nodata corner: fill and valid
        ds.write(np.zeros((4, 20, 30), dtype=dtype), window=rasterio.windows.Window(0, 0, 30, 20))
        ds.nodata = 0
    augment = {"augment": kind != "none", "augment_kind": "default" if kind == "none" else kind}
    dm = make_dm(str(tmp_path), batch_size=6, val_scenes=["a"], test_scenes=["b"], **augment)
    dm.setup()
    for loader in (dm.train_dataloader(), dm.val_dataloader()):
        refs = list(loader.sampler)[:6]
        dataset = loader.dataset
        batched = dataset.__getitems__(refs)
        assert isinstance(batched, dict)  # read as a batch, not sample by sample
        fast, slow = collate_samples(batched), collate_samples([dataset[ref] for ref in refs])
        assert fast.keys() == slow.keys() and fast["crs"] == slow["crs"]
        for key in fast.keys() - {"crs"}:
            assert fast[key].dtype == slow[key].dtype and torch.equal(fast[key], slow[key]), key
    assert dm.train_dataloader().dataset.__getitems__(refs[:0]) == []
    val_valid = collate_samples(dm.val_dataloader().dataset.__getitems__(list(dm.val_dataloader().sampler)))[
        "valid"
    ]
    assert 0 < float(val_valid.float().mean()) < 1  # nodata corner and overlaps: not all pixels count


def test_batches_of_mixed_dtypes_and_true_half_precision(tmp_path: Path) -> None:
    """Scenes of different types in one batch fall back to stacked samples (numpy widens, nothing
    wraps); under ``bf16-true`` the transfer hook casts the float32 batch as Lightning casts inputs."""
    import lightning as L

    from satcnn.data.samplers import WindowRef
    from satcnn.data.scene_windows import SceneWindowDataset

    write_scene(tmp_path / "u8", "a", dtype="uint8")
    write_scene(tmp_path / "u16", "b", dtype="uint16", seed=3)
    dataset = SceneWindowDataset([*find_scenes(tmp_path / "u8"), *find_scenes(tmp_path / "u16")], bands=4)
    refs = [WindowRef(0, 0, 0, 32), WindowRef(1, 8, 8, 32)]
    batch = collate_samples(dataset.__getitems__(refs))
    assert isinstance(dataset.__getitems__(refs), list) and batch["image"].dtype == torch.uint16
    assert int(batch["image"][1].int().max()) > 255  # the uint16 scene's values, not wrapped into uint8
    dm = make_dm(str(tmp_path / "u16"), batch_size=2, augment=False)
    dm.setup()
    dm.trainer = L.Trainer(precision="bf16-true", accelerator="cpu", logger=False)
    half = dm.on_after_batch_transfer(next(iter(dm.val_dataloader())), 0)
    assert half["image"].dtype == torch.bfloat16 and half["mask"].dtype == torch.bfloat16
