"""``satcnn data import-roads``: real Massachusetts pairs (PNG train, JPEG valid), Mnih layout, to scenes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image

from satcnn.data import RoadSceneDataModule
from tests.factories import MASS_EXTRA, satcnn

TRAIN, VALID = ["10978945_15", "17278960_15"], ["2", "4"]


def mnih_folder(root: Path) -> Path:
    """Two PNG train pairs and two JPEG valid pairs from ../shared in one ``sat/`` + ``map/`` folder."""
    assert MASS_EXTRA.is_dir(), f"{MASS_EXTRA} is missing: the tests need ../shared beside the clone"
    for kind in ("sat", "map"):
        (root / kind).mkdir(parents=True)
        for stem in TRAIN:
            shutil.copy(MASS_EXTRA / "train" / kind / f"{stem}.png", root / kind)
        for stem in VALID:
            shutil.copy(MASS_EXTRA / "valid" / kind / f"{stem}.jpg", root / kind)
    return root


def test_real_pairs_become_scenes_with_white_nodata_and_thresholded_masks(tmp_path: Path) -> None:
    src = mnih_folder(tmp_path / "src")
    out = tmp_path / "scenes"
    result = satcnn("data", "import-roads", str(src), "--out", str(out), "--resolution", "1.0")
    assert result.returncode == 0, result.stderr
    assert "wrote 4 scenes" in result.stdout and "(2 with white nodata)" in result.stdout
    assert sorted(p.stem for p in (out / "images").glob("*.tif")) == sorted(TRAIN + VALID)
    assert not list(out.glob(".*")), "the staging folder is gone"
    for stem in TRAIN + VALID:
        suffix = ".png" if stem in TRAIN else ".jpg"
        label = np.asarray(Image.open(src / "map" / f"{stem}{suffix}").convert("L"))
        sat = np.asarray(Image.open(src / "sat" / f"{stem}{suffix}").convert("RGB"))
        with (
            rasterio.open(out / "images" / f"{stem}.tif") as img,
            rasterio.open(out / "masks" / f"{stem}.tif") as msk,
        ):
            assert img.res == (1.0, 1.0) and img.crs is None and img.count == 3
            assert img.nodata == (255 if stem in TRAIN else None)
            mask = msk.read(1)
            if stem in TRAIN:  # white no-data is invalid: the image's dataset mask is 0 exactly there
                assert np.array_equal(img.dataset_mask() == 0, (sat == 255).all(axis=2))
        assert set(np.unique(mask)) <= {0, 1}
        assert np.array_equal(mask, (label >= 128).astype(np.uint8))
        if stem in VALID:  # the lossy JPEG labels hold near-0/near-255 values, thresholded away
            assert set(np.unique(label)) - {0, 255}
    dm = RoadSceneDataModule(
        str(out), patch_size=256, batch_size=2, allow_no_crs=True, augment=False, bands="red,green,blue"
    )
    dm.setup("fit")
    assert dm.in_channels == 3


def test_threshold_option_moves_the_road_edge(tmp_path: Path) -> None:
    (tmp_path / "sat").mkdir()
    (tmp_path / "map").mkdir()
    Image.fromarray(np.full((8, 8, 3), 90, np.uint8)).save(tmp_path / "sat" / "a.png")
    Image.fromarray(np.array([[0, 5, 250, 255] * 2] * 8, np.uint8)).save(tmp_path / "map" / "a.tif")
    result = satcnn("data", "import-roads", str(tmp_path), "--out", str(tmp_path / "o"), "--threshold", "253")
    assert result.returncode == 0, result.stderr
    with rasterio.open(tmp_path / "o" / "masks" / "a.tif") as msk:
        assert msk.read(1)[0].tolist() == [0, 0, 0, 1] * 2


def _bad(root: Path, case: str) -> Path:
    for kind in ("sat", "map"):
        (root / kind).mkdir(parents=True)
    rgb = np.full((16, 16, 3), 80, np.uint8)
    Image.fromarray(rgb).save(root / "sat" / "good.png")
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(root / "map" / "good.png")
    if case == "size":
        Image.fromarray(rgb).save(root / "sat" / "bad.png")
        Image.fromarray(np.zeros((12, 16), np.uint8)).save(root / "map" / "bad.png")
    elif case == "grey":  # a photo given as a label
        Image.fromarray(rgb).save(root / "sat" / "bad.png")
        Image.fromarray(np.arange(256, dtype=np.uint8).reshape(16, 16)).save(root / "map" / "bad.png")
    else:  # a cut JPEG
        Image.fromarray(rgb).save(root / "map" / "bad.png")
        (root / "sat" / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return root


def test_bad_pairs_give_one_line_naming_the_file_and_write_nothing(tmp_path: Path) -> None:
    for case, name, words in [
        ("size", "map/bad.png", "16x12"),
        ("grey", "map/bad.png", "not a mask"),
        ("jpeg", "sat/bad.jpg", "cannot read"),
    ]:
        src = _bad(tmp_path / case, case)
        out = tmp_path / f"out-{case}"
        result = satcnn("data", "import-roads", str(src), "--out", str(out))
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 1 and len(lines) == 1, (case, result.stderr)
        assert name in lines[0] and words in lines[0], (case, lines)
        assert not out.exists(), f"{case}: nothing is written, not even good.tif"
