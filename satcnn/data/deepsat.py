"""Readers for the DeepSat (SAT-4 / SAT-6) release formats.

Three layouts are read, each into :class:`DeepSatSplits` whose image arrays are
``(N, 28, 28, 4)`` uint8 views (memory-mapped or lazy where the format allows, never copied
whole):

- the MATLAB release ``sat-6-full.mat`` / ``sat-4-full.mat``: ``train_x`` 28x28x4xN uint8,
  ``train_y`` one-hot CxN, ``test_x``, ``test_y``, ``annotations`` (v5 files through SciPy,
  v7.3 files through h5py, read lazily);
- the Kaggle CSV release: ``X_train_sat6.csv`` rows of 3136 uint8 values (channel-last),
  ``y_train_sat6.csv`` one-hot rows, ``sat6annotations.csv`` for the class order. The CSV is
  parsed once, in chunks, into a ``.npy`` cache that later runs memory-map;
- a folder of per-class 28x28 4-band GeoTIFF patches: ``root/<class>/*.tif``, with the test
  split in ``root/tst`` or ``root/test`` when ``root/trn`` or ``root/train`` holds the training one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from satcnn.errors import DataFormatError, InputFileNotFoundError, require_file

log = logging.getLogger(__name__)

PATCH = 28
BANDS = ["red", "green", "blue", "nir"]
ROW_VALUES = PATCH * PATCH * len(BANDS)
SAT6_CLASSES = ["building", "barren_land", "trees", "grassland", "road", "water"]
SAT4_CLASSES = ["barren_land", "trees", "grassland", "other"]
DEFAULT_CLASSES = {"sat6": SAT6_CLASSES, "sat4": SAT4_CLASSES}

Format = Literal["auto", "mat", "csv", "folder"]


class PatchArray(Protocol):
    """What a split's images must offer: ``len``, a shape, and indexing by one position."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    def __len__(self) -> int: ...

    def __getitem__(self, index: Any) -> Any: ...


@dataclass
class Split:
    """One split: images ``(N, 28, 28, 4)`` (channel-last, uint8) and integer labels ``(N,)``."""

    images: PatchArray
    labels: np.ndarray
    source: str

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class DeepSatSplits:
    """The official train and test splits of a DeepSat release, and the class order."""

    train: Split
    test: Split
    classes: list[str]


def cache_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Where parsed CSVs are cached: ``explicit``, ``$SATCNN_CACHE``, or ``~/.cache/satcnn``."""
    if explicit is not None:
        return Path(explicit)
    if env := os.environ.get("SATCNN_CACHE"):
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "satcnn"


# ---------------------------------------------------------------------------- labels


def onehot_to_index(onehot: np.ndarray, path: str | Path, classes: int | None = None) -> np.ndarray:
    """Turn one-hot rows ``(N, C)`` into class indices, checking they are one-hot."""
    if onehot.ndim != 2:
        raise DataFormatError(f"labels must be a 2-D one-hot table; got shape {onehot.shape}", path)
    if classes is not None and onehot.shape[1] != classes:
        raise DataFormatError(f"labels have {onehot.shape[1]} columns; expected {classes} classes", path)
    ok = np.isin(onehot, (0, 1)).all(axis=1) & (onehot.sum(axis=1) == 1)
    if not ok.all():
        bad = int(np.flatnonzero(~ok)[0])
        raise DataFormatError(
            f"labels are not one-hot: row {bad + 1} is {onehot[bad].tolist()} "
            "(each row needs exactly one 1 and zeros elsewhere)",
            path,
        )
    return onehot.argmax(axis=1).astype(np.int64)


def check_counts(images: PatchArray, labels: np.ndarray, x_path: str | Path, y_path: str | Path) -> None:
    """Raise :class:`DataFormatError` naming the files when images and labels differ in count."""
    if len(images) != len(labels):
        raise DataFormatError(
            f"{len(images)} images but {len(labels)} labels in {y_path}; the two files must have one row "
            "per patch, in the same order",
            x_path,
        )


# ---------------------------------------------------------------------------- .mat


def _mat_annotations(raw: Any) -> list[str]:
    """Class names from the ``annotations`` cell array (first string of each row)."""
    arr = np.asarray(raw, dtype=object)
    if arr.ndim == 1:
        arr = arr[:, None]
    names = []
    for row in arr:
        cell = row[0]
        while isinstance(cell, np.ndarray) and cell.size:
            cell = cell.flat[0]
        names.append(str(cell).strip())
    return names


def read_mat(path: str | Path, variant: str = "sat6") -> DeepSatSplits:
    """Read ``sat-6-full.mat`` / ``sat-4-full.mat`` (MATLAB v5 or v7.3).

    Raises:
        InputFileNotFoundError: the file is missing.
        DataFormatError: a key is missing or has the wrong shape, labels are not one-hot,
            or image and label counts differ.
    """
    import scipy.io

    path = require_file(path, "DeepSat .mat file")
    keys = ("train_x", "train_y", "test_x", "test_y")
    try:
        mat: dict[str, Any] = scipy.io.loadmat(path)
        lazy = False
    except NotImplementedError:  # MATLAB v7.3 is HDF5
        import h5py

        mat = dict(h5py.File(path, "r"))
        lazy = True
    except Exception as err:
        raise DataFormatError(f"cannot read as a MATLAB .mat file ({err})", path) from None
    missing = [k for k in keys if k not in mat]
    if missing:
        raise DataFormatError(
            f"missing {', '.join(missing)}; a DeepSat .mat file holds train_x, train_y, test_x, test_y "
            "and annotations",
            path,
        )
    if "annotations" in mat and not lazy:
        classes = _mat_annotations(mat["annotations"])
    else:
        classes = list(DEFAULT_CLASSES[variant])
    splits = []
    for x_key, y_key in (("train_x", "train_y"), ("test_x", "test_y")):
        x, y = mat[x_key], np.asarray(mat[y_key])
        if lazy:  # h5py reverses MATLAB's axis order: (N, 4, 28, 28) and (N, C)
            images: PatchArray = _H5Patches(x, path, x_key)
            onehot = y
        else:
            if x.ndim != 4 or x.shape[:3] != (PATCH, PATCH, len(BANDS)):
                raise DataFormatError(f"{x_key} has shape {x.shape}; expected (28, 28, 4, N)", path)
            images = np.moveaxis(x, 3, 0)  # a view: (N, 28, 28, 4)
            onehot = y.T
        labels = onehot_to_index(onehot, f"{path}:{y_key}", len(classes))
        check_counts(images, labels, f"{path}:{x_key}", f"{path}:{y_key}")
        splits.append(Split(images, labels, f"{path}:{x_key}"))
    return DeepSatSplits(splits[0], splits[1], classes)


class _H5Patches:
    """Lazy view of a v7.3 ``train_x`` dataset as ``(N, 28, 28, 4)``."""

    def __init__(self, dataset: Any, path: Path, key: str) -> None:
        if dataset.ndim != 4 or tuple(dataset.shape[1:]) != (len(BANDS), PATCH, PATCH):
            raise DataFormatError(f"{key} has shape {dataset.shape[::-1]}; expected (28, 28, 4, N)", path)
        self.dataset = dataset
        self.shape = (dataset.shape[0], PATCH, PATCH, len(BANDS))

    def __len__(self) -> int:
        return int(self.shape[0])

    def __getitem__(self, index: Any) -> np.ndarray:
        # MATLAB (row, col, band) -> h5py (band, col, row)
        return np.asarray(self.dataset[index]).swapaxes(-1, -3)


# ---------------------------------------------------------------------------- folder of GeoTIFFs


class _TiffPatches:
    """Lazy ``(N, 28, 28, 4)`` view of a list of 28x28 4-band GeoTIFF patches."""

    def __init__(self, files: Sequence[Path]) -> None:
        self.files = list(files)
        self.shape = (len(self.files), PATCH, PATCH, len(BANDS))

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: Any) -> np.ndarray:
        if isinstance(index, (int, np.integer)):
            return self._read(self.files[int(index)])
        picks = np.arange(len(self.files))[index]
        return np.stack([self._read(self.files[i]) for i in picks])

    @staticmethod
    def _read(path: Path) -> np.ndarray:
        import warnings

        import rasterio
        from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            try:
                with rasterio.open(path) as src:
                    data = src.read()
            except RasterioIOError as err:
                raise DataFormatError(f"cannot read patch ({err})", path) from None
        if data.shape != (len(BANDS), PATCH, PATCH) or data.dtype != np.uint8:
            raise DataFormatError(
                f"patch is {data.shape[0]}x{data.shape[1]}x{data.shape[2]} {data.dtype}; "
                "expected 4 bands of 28x28 uint8",
                path,
            )
        return data.transpose(1, 2, 0)


def _folder_split(root: Path, classes: list[str]) -> Split:
    files: list[Path] = []
    labels: list[int] = []
    for index, name in enumerate(classes):
        class_files = sorted(p for p in (root / name).glob("*.tif*") if p.is_file())
        files += class_files
        labels += [index] * len(class_files)
    if not files:
        raise InputFileNotFoundError(f"no .tif patches in the class folders {classes}", root)
    return Split(_TiffPatches(files), np.asarray(labels, dtype=np.int64), str(root))


def read_folder(
    root: str | Path, classes: Sequence[str] | None = None, val_fraction: float = 0.2, seed: int = 0
) -> DeepSatSplits:
    """Read per-class folders of 28x28 4-band GeoTIFF patches.

    ``root/{trn,train}/<class>/*.tif`` and ``root/{tst,test}/<class>/*.tif`` give the two
    splits; a ``root`` with class folders only, or with a training folder only, has its test
    split drawn from it with ``seed`` (a warning says so). Classes are ``classes`` in that order, or
    the sorted folder names.
    """
    root = require_file(root, "DeepSat patch folder")
    train_dir = next((root / n for n in ("trn", "train") if (root / n).is_dir()), root)
    test_dir = next((root / n for n in ("tst", "test") if (root / n).is_dir()), None)
    names = list(classes) if classes else sorted(p.name for p in train_dir.iterdir() if p.is_dir())
    if not names:
        raise InputFileNotFoundError("no class folders (expected root/<class>/*.tif)", train_dir)
    for name in names:
        if not (train_dir / name).is_dir():
            raise InputFileNotFoundError(f"class folder {name!r} missing", train_dir)
    train = _folder_split(train_dir, names)
    if test_dir is not None:
        return DeepSatSplits(train, _folder_split(test_dir, names), names)
    log.warning("%s: no test folder (tst/ or test/); holding out %.0f%% as test", root, 100 * val_fraction)
    order = np.random.default_rng(seed).permutation(len(train))
    cut = max(1, round(len(order) * val_fraction))
    assert isinstance(train.images, _TiffPatches)
    files = train.images.files

    def take(idx: np.ndarray) -> Split:
        return Split(_TiffPatches([files[i] for i in idx]), train.labels[idx], str(train_dir))

    return DeepSatSplits(take(np.sort(order[cut:])), take(np.sort(order[:cut])), names)


# ---------------------------------------------------------------------------- dispatch


def detect_format(root: str | Path) -> Literal["mat", "csv", "folder"]:
    """Guess the release format of ``root``: a .mat file, a folder of CSVs, or of class folders."""
    path = require_file(root, "DeepSat data")
    if path.is_file():
        if path.suffix.lower() == ".mat":
            return "mat"
        raise DataFormatError("expected a .mat file, a folder of Kaggle CSVs or of class folders", path)
    if any(path.glob("*.csv")):
        return "csv"
    return "folder"


def read_deepsat(
    root: str | Path,
    format: Format = "auto",
    variant: str = "sat6",
    classes: Sequence[str] | None = None,
    cache: str | None = None,
    seed: int = 0,
) -> DeepSatSplits:
    """Read any DeepSat release layout (see the module docstring)."""
    fmt = detect_format(root) if format == "auto" else format
    if fmt == "mat":
        return read_mat(root, variant)
    if fmt == "csv":
        from satcnn.data.deepsat_csv import read_csv_release

        return read_csv_release(root, variant, cache)
    return read_folder(root, classes, seed=seed)
