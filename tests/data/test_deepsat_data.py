"""DeepSat readers on files written here in the exact release layouts, and on the real sample rows."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
import torch

from satcnn.data import DeepSatDataModule
from satcnn.data.deepsat import SAT6_CLASSES, read_deepsat, read_folder, read_mat
from satcnn.data.deepsat_csv import read_csv_release
from satcnn.errors import DataFormatError, InputFileNotFoundError
from tests.factories import SAT6_CSV, SAT6_TIFS

RNG = np.random.default_rng(0)


def _release(n_train: int = 30, n_test: int = 12, classes: int = 6) -> dict[str, np.ndarray]:
    """Arrays in DeepSat's own layout: images 28x28x4xN, labels one-hot CxN."""
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        labels = RNG.integers(0, classes, n)
        out[f"{split}_x"] = RNG.integers(0, 256, (28, 28, 4, n), dtype=np.uint8)
        out[f"{split}_y"] = np.eye(classes, dtype=np.uint8)[labels].T
    return out


def _annotations(names: list[str]) -> np.ndarray:
    cells = np.empty((len(names), 2), dtype=object)
    for i, name in enumerate(names):
        cells[i] = [name, " ".join("1" if j == i else "0" for j in range(len(names)))]
    return cells


def test_mat_release_keeps_layout_split_and_annotation_order(tmp_path: Path) -> None:
    arrays = _release()
    names = ["building", "barren_land", "trees", "grassland", "road", "water"]
    path = tmp_path / "sat-6-full.mat"
    scipy.io.savemat(path, {**arrays, "annotations": _annotations(names)})
    splits = read_mat(path)
    assert splits.classes == names
    assert len(splits.train) == 30 and len(splits.test) == 12  # the official test split is kept
    # patch k of the release is train_x[:, :, :, k]; labels follow train_y's one-hot columns
    np.testing.assert_array_equal(splits.train.images[7], arrays["train_x"][:, :, :, 7])
    np.testing.assert_array_equal(splits.test.labels, arrays["test_y"].argmax(axis=0))


def test_mat_v73_is_read_lazily_through_hdf5(tmp_path: Path) -> None:
    arrays = _release(n_train=9, n_test=5)
    path = tmp_path / "sat-6-full.mat"
    # MATLAB v7.3: a 512-byte MATLAB header as HDF5 user block; arrays stored with axes reversed.
    with h5py.File(path, "w", userblock_size=512) as f:
        for key, value in arrays.items():
            f[key] = value.T
    with path.open("r+b") as f:
        f.write(b"MATLAB 7.3 MAT-file".ljust(116) + b"\0" * 8 + b"\x00\x02" + b"IM")
    splits = read_mat(path)
    assert splits.classes == SAT6_CLASSES
    np.testing.assert_array_equal(splits.train.images[3], arrays["train_x"][:, :, :, 3])
    np.testing.assert_array_equal(splits.train.labels, arrays["train_y"].argmax(axis=0))


def _write_csv_release(root: Path, arrays: dict[str, np.ndarray], names: list[str]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        rows = arrays[f"{split}_x"].transpose(3, 0, 1, 2).reshape(-1, 3136)  # channel-last rows
        np.savetxt(root / f"X_{split}_sat6.csv", rows, fmt="%d", delimiter=",")
        np.savetxt(root / f"y_{split}_sat6.csv", arrays[f"{split}_y"].T, fmt="%d", delimiter=",")
    lines = [",".join([n] + ["1" if j == i else "0" for j in range(len(names))]) for i, n in enumerate(names)]
    (root / "sat6annotations.csv").write_text("\n".join(lines) + "\n")


def test_csv_release_matches_mat_layout(tmp_path: Path) -> None:
    arrays = _release()
    _write_csv_release(tmp_path / "csv", arrays, SAT6_CLASSES)
    splits = read_csv_release(tmp_path / "csv", cache=str(tmp_path / "cache"))
    assert splits.train.images.shape == (30, 28, 28, 4)
    np.testing.assert_array_equal(np.asarray(splits.train.images), arrays["train_x"].transpose(3, 0, 1, 2))
    np.testing.assert_array_equal(splits.test.labels, arrays["test_y"].argmax(axis=0))
    # the parsed cache is memory-mapped on the next read, not parsed again
    again = read_csv_release(tmp_path / "csv", cache=str(tmp_path / "cache"))
    assert isinstance(again.train.images, np.memmap)
    np.testing.assert_array_equal(np.asarray(again.train.images), np.asarray(splits.train.images))


def test_real_sample_rows_in_annotation_order() -> None:
    splits = read_deepsat(SAT6_CSV)
    assert splits.classes == ["building", "barren_land", "trees", "grassland", "road", "water"]
    assert len(splits.train) == 200 and len(splits.test) == 200
    # class counts of the sample's train rows, as listed in data/samples/NOTICE.md
    counts = dict(zip(splits.classes, np.bincount(splits.train.labels, minlength=6).tolist(), strict=True))
    assert counts == {"building": 11, "barren_land": 46, "trees": 34, "grassland": 38, "road": 2, "water": 69}
    # vegetation is bright in NIR and darker in red; water is dark in NIR
    img = np.asarray(splits.train.images, dtype=np.float64)
    trees = img[splits.train.labels == 2].mean(axis=(0, 1, 2))
    water = img[splits.train.labels == 5].mean(axis=(0, 1, 2))
    assert trees[3] > trees[0] and water[3] < trees[3]


def test_real_tif_patch_folder() -> None:
    splits = read_folder(SAT6_TIFS)
    assert splits.classes == ["barren_land", "building", "grassland", "roads", "trees", "water"]
    assert len(splits.train) + len(splits.test) == 48
    assert splits.train.images[0].shape == (28, 28, 4)


def test_datamodule_samples_shapes_split_and_stats() -> None:
    dm = DeepSatDataModule(str(SAT6_CSV), val_fraction=0.1, seed=3, batch_size=16, augment=False)
    dm.setup("fit")
    assert dm.num_classes == 6 and dm.in_channels == 4
    assert len(dm.train_idx) == 180 and len(dm.val_idx) == 20
    assert not set(dm.train_idx) & set(dm.val_idx)
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (16, 4, 28, 28) and batch["label"].dtype == torch.int64
    mean, std = dm.band_stats()
    train = np.asarray(dm.splits.train.images, dtype=np.float64)[dm.train_idx]  # type: ignore[union-attr]
    np.testing.assert_allclose(mean, train.mean(axis=(0, 1, 2)), rtol=1e-9)
    np.testing.assert_allclose(std, train.std(axis=(0, 1, 2)), rtol=1e-6)
    # the validation split depends on the seed, not on chance
    other = DeepSatDataModule(str(SAT6_CSV), seed=3)
    other.setup()
    np.testing.assert_array_equal(other.val_idx, dm.val_idx)


# ---------------------------------------------------------------------------- bad input


def test_mat_without_train_x(tmp_path: Path) -> None:
    arrays = _release()
    del arrays["train_x"]
    path = tmp_path / "broken.mat"
    scipy.io.savemat(path, arrays)
    with pytest.raises(DataFormatError, match=r"broken\.mat.*missing train_x"):
        read_mat(path)


def test_labels_not_one_hot(tmp_path: Path) -> None:
    arrays = _release()
    arrays["train_y"][:, 4] = [1, 1, 0, 0, 0, 0]
    path = tmp_path / "sat.mat"
    scipy.io.savemat(path, arrays)
    with pytest.raises(DataFormatError, match=r"not one-hot: row 5"):
        read_mat(path)


def test_image_and_label_counts_differ(tmp_path: Path) -> None:
    arrays = _release()
    _write_csv_release(tmp_path, arrays, SAT6_CLASSES)
    y = np.loadtxt(tmp_path / "y_train_sat6.csv", delimiter=",")
    np.savetxt(tmp_path / "y_train_sat6.csv", y[:-3], fmt="%d", delimiter=",")
    with pytest.raises(DataFormatError, match=r"X_train_sat6\.csv.*30 images but 27 labels"):
        read_csv_release(tmp_path)


def test_csv_row_with_wrong_number_of_values(tmp_path: Path) -> None:
    arrays = _release()
    _write_csv_release(tmp_path, arrays, SAT6_CLASSES)
    lines = (tmp_path / "X_train_sat6.csv").read_text().splitlines()
    lines[6] += ",17"
    (tmp_path / "X_train_sat6.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=r"X_train_sat6\.csv: row 7 has 3137 values; expected 3136"):
        read_csv_release(tmp_path)
    lines[6] = lines[6].rsplit(",", 2)[0]  # now 3135 values
    (tmp_path / "X_train_sat6.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=r"row 7 has fewer than 3136 values"):
        read_csv_release(tmp_path)
    assert not list(Path(tmp_path).rglob("*.tmp")), "no half-written cache"


def test_missing_file() -> None:
    with pytest.raises(InputFileNotFoundError, match=r"nowhere\.mat: DeepSat data not found"):
        read_deepsat("nowhere.mat")


def test_csv_error_names_the_file_once(tmp_path: Path) -> None:
    arrays = _release()
    _write_csv_release(tmp_path, arrays, SAT6_CLASSES)
    lines = (tmp_path / "X_train_sat6.csv").read_text().splitlines()
    lines[2] = lines[2].rsplit(",", 1)[0] + ",300"  # a value outside uint8
    (tmp_path / "X_train_sat6.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError) as err:
        read_csv_release(tmp_path)
    assert str(err.value).count("X_train_sat6.csv") == 1 and "integers 0-255" in str(err.value)


def test_augmentation_differs_between_dataloader_workers() -> None:
    """albumentations keeps its own generator; each worker must draw its own flips."""
    from torch.utils.data import DataLoader

    from satcnn.data.deepsat import Split
    from satcnn.data.deepsat_datamodule import DeepSatDataset, ImageAugment

    image = np.arange(28 * 28 * 4, dtype=np.uint8).reshape(1, 28, 28, 4) % 251
    split = Split(np.repeat(image, 16, axis=0), np.zeros(16, dtype=np.int64), "synthetic")
    loader = DataLoader(DeepSatDataset(split, np.arange(16), ImageAugment()), batch_size=1, num_workers=2)
    out = [batch["image"][0] for batch in loader]  # workers alternate: 0, 1, 0, 1, ...
    assert any(not torch.equal(out[2 * k], out[2 * k + 1]) for k in range(8))
