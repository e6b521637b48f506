"""Merging the SAT-6 CSV rows and per-class patch folders into one training folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from satcnn.data.deepsat import read_deepsat
from satcnn.data.deepsat_csv import read_csv_release
from satcnn.data.deepsat_merge import merge_patch_sets
from tests.factories import SAT6_CSV, SAT6_TIFS


def test_merge_csv_rows_and_patch_folders(tmp_path: Path) -> None:
    merged = merge_patch_sets([SAT6_CSV, SAT6_TIFS], tmp_path / "m", aliases={"roads": "road"})
    csv = read_csv_release(SAT6_CSV)
    assert merged.classes == csv.classes  # the CSV order; the alias added no seventh class
    road = csv.classes.index("road")
    assert merged.counts["trn"]["road"] == int((csv.train.labels == road).sum()) + 8
    assert merged.counts["tst"]["road"] == int((csv.test.labels == road).sum())
    splits = read_deepsat(merged.root, "folder", classes=merged.classes)
    assert len(splits.train) == len(csv.train) + 48 and len(splits.test) == len(csv.test)
    # a CSV row survives the round trip bit for bit, with its label
    first = sorted((merged.root / "trn").rglob("s0_000000.tif"))
    assert len(first) == 1 and first[0].parent.name == csv.classes[int(csv.train.labels[0])]
    index = splits.train.images.files.index(first[0])  # type: ignore[attr-defined]
    np.testing.assert_array_equal(splits.train.images[index], np.asarray(csv.train.images[0]))
