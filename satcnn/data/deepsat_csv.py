"""The Kaggle CSV release of DeepSat: ``X_<split>_sat6.csv`` rows of 3136 uint8 values.

The image CSV is parsed once, in chunks, into a ``.npy`` cache that later runs memory-map, so the
full 405k-row SAT-6 is never held twice.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from satcnn.data.deepsat import (
    BANDS,
    DEFAULT_CLASSES,
    PATCH,
    ROW_VALUES,
    DeepSatSplits,
    Split,
    cache_dir,
    check_counts,
    onehot_to_index,
)
from satcnn.errors import DataFormatError, InputFileNotFoundError, require_file
from satcnn.io.atomic import atomic_output

log = logging.getLogger(__name__)


def _cache_key(path: Path) -> str:
    st = path.stat()
    return hashlib.sha1(f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:16]


def _count_rows(path: Path) -> int:
    rows = 0
    last = b"\n"
    with path.open("rb") as f:
        while chunk := f.read(1 << 24):
            rows += chunk.count(b"\n")
            last = chunk[-1:]
    return rows + (last != b"\n")


def read_csv_images(path: str | Path, cache: str | os.PathLike[str] | None = None) -> np.ndarray:
    """Memory-map the patches of a Kaggle-style CSV (one 3136-value row per patch).

    The first call parses the CSV in chunks into ``<cache>/<stem>-<key>.npy``; later calls
    only memory-map it. Returns an ``(N, 28, 28, 4)`` uint8 array.

    Raises:
        DataFormatError: a row has the wrong number of values or a value outside 0-255.
    """
    path = require_file(path, "DeepSat image CSV")
    target = cache_dir(cache) / f"{path.stem}-{_cache_key(path)}.npy"
    if not target.exists():
        _parse_csv(path, target)
    rows = np.load(target, mmap_mode="r")
    return rows.reshape(len(rows), PATCH, PATCH, len(BANDS))


def _parse_csv(path: Path, target: Path) -> None:
    """Parse the CSV in chunks into the ``.npy`` file ``target`` (written atomically)."""
    rows = _count_rows(path)
    if rows == 0:
        raise DataFormatError("the CSV is empty; expected rows of 3136 values", path)
    with atomic_output(target) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(rows, ROW_VALUES))
        start = 0
        reader = pd.read_csv(path, header=None, chunksize=4096, dtype=np.float32, engine="c")
        try:
            for chunk in reader:
                values = chunk.to_numpy()
                if values.shape[1] != ROW_VALUES:
                    raise DataFormatError(
                        f"row {start + 1} has {values.shape[1]} values; expected {ROW_VALUES} (28x28x4)", path
                    )
                if np.isnan(values).any():
                    bad = start + int(np.flatnonzero(np.isnan(values).any(axis=1))[0])
                    raise DataFormatError(
                        f"row {bad + 1} has fewer than {ROW_VALUES} values (28x28x4) or an empty field", path
                    )
                if (values < 0).any() or (values > 255).any() or (values != np.round(values)).any():
                    raise DataFormatError("values must be integers 0-255 (uint8)", path)
                out[start : start + len(values)] = values
                start += len(values)
        except pd.errors.ParserError as err:
            match = re.search(r"line (\d+), saw (\d+)", str(err))
            detail = (
                f"row {match.group(1)} has {match.group(2)} values; expected {ROW_VALUES} (28x28x4)"
                if match
                else str(err)
            )
            raise DataFormatError(detail, path) from None
        except DataFormatError:
            raise
        except ValueError as err:
            raise DataFormatError(f"not a table of numbers ({err})", path) from None
        out.flush()
        del out
        if start != rows:
            raise DataFormatError(f"read {start} rows but the file has {rows} lines", path)
    log.info("cached %s rows of %s in %s", rows, path, target)


def read_csv_labels(path: str | Path, classes: int) -> np.ndarray:
    """Read one-hot label rows and return class indices."""
    path = require_file(path, "DeepSat label CSV")
    try:
        onehot = pd.read_csv(path, header=None, dtype=np.float64).to_numpy()
    except (pd.errors.ParserError, ValueError) as err:
        raise DataFormatError(f"not a table of one-hot labels ({err})", path) from None
    return onehot_to_index(onehot, path, classes)


def read_csv_annotations(path: str | Path) -> list[str]:
    """Class names in label-column order from ``sat6annotations.csv`` (``name,1,0,...`` rows)."""
    path = require_file(path, "DeepSat annotations CSV")
    table = pd.read_csv(path, header=None)
    names = [str(n).strip() for n in table.iloc[:, 0]]
    onehot = table.iloc[:, 1:].to_numpy()
    order = onehot_to_index(onehot, path, len(names))
    if sorted(order.tolist()) != list(range(len(names))):
        raise DataFormatError("each class must own exactly one label column", path)
    result = [""] * len(names)
    for name, column in zip(names, order, strict=True):
        result[column] = name
    return result


_CSV_PATTERNS = {
    "train_x": ("X_train_{v}.csv", "train_X*.csv", "X_train*.csv"),
    "train_y": ("y_train_{v}.csv", "train_y*.csv", "y_train*.csv"),
    "test_x": ("X_test_{v}.csv", "test_X*.csv", "X_test*.csv"),
    "test_y": ("y_test_{v}.csv", "test_y*.csv", "y_test*.csv"),
    "annotations": ("{v}annotations.csv", "*annotations*.csv"),
}


def find_csv_files(root: Path, variant: str) -> dict[str, Path]:
    """Locate the Kaggle CSV files in ``root`` by their release names (or close variants)."""
    found: dict[str, Path] = {}
    for role, patterns in _CSV_PATTERNS.items():
        for pattern in patterns:
            hits = sorted(root.glob(pattern.format(v=variant)))
            if hits:
                found[role] = hits[0]
                break
    missing = [r for r in _CSV_PATTERNS if r not in found and r != "annotations"]
    if missing:
        raise InputFileNotFoundError(
            f"no {', '.join(missing)} CSV found; expected X_train_{variant}.csv, y_train_{variant}.csv, "
            f"X_test_{variant}.csv and y_test_{variant}.csv (Kaggle release names)",
            root,
        )
    return found


def read_csv_release(root: str | Path, variant: str = "sat6", cache: str | None = None) -> DeepSatSplits:
    """Read the Kaggle CSV release from the folder ``root``."""
    root = require_file(root, "DeepSat CSV folder")
    files = find_csv_files(root, variant)
    if "annotations" in files:
        classes = read_csv_annotations(files["annotations"])
    else:
        classes = list(DEFAULT_CLASSES[variant])
        log.warning("%s: no annotations CSV; assuming the %s class order %s", root, variant, classes)
    splits = []
    for stem in ("train", "test"):
        x_path, y_path = files[f"{stem}_x"], files[f"{stem}_y"]
        labels = read_csv_labels(y_path, len(classes))
        images = read_csv_images(x_path, cache)
        check_counts(images, labels, x_path, y_path)
        splits.append(Split(images, labels, str(x_path)))
    return DeepSatSplits(splits[0], splits[1], classes)
