"""Synthetic road scenes: grid, content, determinism, window independence and bounded memory."""

from __future__ import annotations

import hashlib
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.enums import ColorInterp, MaskFlags
from rasterio.windows import Window

from satcnn.data.synth import BANDS, Cover, RoadScene, synth_roads
from satcnn.errors import ConfigError
from satcnn.io.reader import WindowReader


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, Path]]:
    out = tmp_path_factory.mktemp("synth")
    return synth_roads(out, count=2, size=512, seed=3, block=256, progress=False)


def test_files_grid_and_profile(scenes: list[tuple[Path, Path]]) -> None:
    assert [p.name for p, _ in scenes] == ["scene_000.tif", "scene_001.tif"]
    for image_path, mask_path in scenes:
        assert image_path.parent.name == "images" and mask_path.parent.name == "masks"
        assert mask_path.name == image_path.name
        with rasterio.open(image_path) as img, rasterio.open(mask_path) as msk:
            assert (img.count, img.height, img.width) == (4, 512, 512)
            assert img.dtypes == ("uint8",) * 4 and msk.dtypes == ("uint8",)
            assert msk.count == 1 and msk.shape == img.shape
            assert img.crs.to_epsg() == 32633 and msk.crs == img.crs
            assert msk.transform == img.transform
            res = img.transform.a
            assert 0.5 <= res <= 1.0 and img.transform.e == -res and img.transform.b == 0
            assert 166_000 < img.bounds.left < img.bounds.right < 834_000  # inside UTM zone easting range
            assert 0 < img.bounds.bottom < img.bounds.top < 9_300_000
            assert img.descriptions == tuple(BANDS)
            assert img.profile["tiled"] and img.block_shapes[0] == (256, 256)
            assert img.compression is not None and img.compression.value == "DEFLATE"
            mask = msk.read(1)
        assert set(np.unique(mask).tolist()) <= {0, 1}
        assert 0.02 <= mask.mean() <= 0.25, f"road fraction {mask.mean():.3f}"
    # No temporary files left next to the outputs.
    folder = scenes[0][0].parent.parent
    assert not [p for p in folder.rglob("*") if p.name.startswith(".")]


def test_band_4_is_nir_not_alpha(scenes: list[tuple[Path, Path]]) -> None:
    for image_path, _ in scenes:
        with rasterio.open(image_path) as img:
            assert img.colorinterp == (
                ColorInterp.red,
                ColorInterp.green,
                ColorInterp.blue,
                ColorInterp.undefined,
            )
            assert ColorInterp.alpha not in img.colorinterp
            assert img.descriptions == ("red", "green", "blue", "nir")
            assert all(flags == [MaskFlags.all_valid] for flags in img.mask_flag_enums)
            assert (img.dataset_mask() == 255).all()
            _, valid = WindowReader(img, bands=4).read(Window(0, 0, img.width, img.height))
            assert valid.all()
    assert not [p for p in scenes[0][0].parent.iterdir() if p.suffix == ".xml"]  # no PAM sidecar


def test_spectral_signatures() -> None:
    scene = RoadScene.generate(768, seed=11, resolution=0.75)
    image, mask, cover = scene.render(Window(0, 0, 768, 768))
    red, nir = image[0].astype(np.float64), image[3].astype(np.float64)
    ndvi = (nir - red) / (nir + red + 1e-6)
    vegetation = np.isin(cover, [Cover.TREE, Cover.GRASS])
    asphalt = (mask == 1) & (cover == Cover.ROAD)
    assert vegetation.sum() > 1000 and asphalt.sum() > 1000
    assert ndvi[vegetation].mean() > ndvi[asphalt].mean() + 0.3
    assert ndvi[vegetation].mean() > ndvi[mask == 1].mean()  # also with canopy-covered road pixels
    water = cover == Cover.WATER
    assert water.sum() > 100
    for other in np.unique(cover):
        if other != Cover.WATER:
            assert image[3][water].mean() < image[3][cover == other].mean(), Cover(other).name
    # Some road is hidden under tree crowns: road in the mask, tree in the image.
    assert ((mask == 1) & (cover == Cover.TREE)).sum() > 0
    # Roads are where the mask says: the road surface never shows outside the mask.
    assert not ((cover == Cover.ROAD) & (mask == 0)).any()


def test_deterministic(tmp_path: Path, scenes: list[tuple[Path, Path]]) -> None:
    again = synth_roads(tmp_path / "a", count=1, size=512, seed=3, block=256, progress=False)
    other = synth_roads(tmp_path / "b", count=1, size=512, seed=4, block=256, progress=False)
    assert _digest(again[0][0]) == _digest(scenes[0][0])
    assert _digest(again[0][1]) == _digest(scenes[0][1])
    assert _digest(other[0][0]) != _digest(scenes[0][0])
    assert _digest(scenes[1][0]) != _digest(scenes[0][0])  # scenes in one batch differ


def test_windows_line_up(tmp_path: Path) -> None:
    """Rendering in 128 or 512 windows gives the same mask and the same image up to noise."""
    small = synth_roads(tmp_path / "s", count=1, size=512, seed=5, resolution=0.6, block=128, progress=False)
    whole = synth_roads(tmp_path / "w", count=1, size=512, seed=5, resolution=0.6, block=512, progress=False)
    with rasterio.open(small[0][1]) as a, rasterio.open(whole[0][1]) as b:
        np.testing.assert_array_equal(a.read(), b.read())
    with rasterio.open(small[0][0]) as a, rasterio.open(whole[0][0]) as b:
        diff = np.abs(a.read().astype(np.int16) - b.read().astype(np.int16))
    assert diff.mean() < 8 and np.median(diff) <= 6  # only the white noise differs


@pytest.mark.slow
def test_bounded_memory(tmp_path: Path) -> None:
    """Peak numpy/Python allocations stay far below the raster's size (4096^2 x 5 bytes)."""
    size = 4096
    tracemalloc.start()
    try:
        synth_roads(tmp_path, count=1, size=size, seed=2, resolution=0.5, block=512, progress=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    full = size * size * 5
    assert peak < full / 4, f"peak {peak / 1e6:.1f} MB vs raster {full / 1e6:.1f} MB"
    with rasterio.open(tmp_path / "masks" / "scene_000.tif") as msk:
        assert msk.shape == (size, size)
        assert msk.read(1, window=Window(0, 0, 1024, 1024)).any()


def test_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    original = RoadScene.render

    def flaky(self: RoadScene, window: Window, index: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk full")
        return original(self, window, index)

    monkeypatch.setattr(RoadScene, "render", flaky)
    with pytest.raises(RuntimeError):
        synth_roads(tmp_path, count=1, size=256, seed=1, block=64, progress=False)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"count": 0}, "count"),
        ({"size": 8}, "size"),
        ({"block": 4}, "block"),
        ({"seed": -1}, "seed"),
        ({"resolution": -1.0}, "resolution"),
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict[str, float], word: str) -> None:
    args: dict = {"count": 1, "size": 64, "seed": 0, **kwargs}
    with pytest.raises(ConfigError, match=word):
        synth_roads(tmp_path, **args)
