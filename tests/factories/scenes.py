"""Road scenes (``images/<name>.tif`` + ``masks/<name>.tif``) and a DataModule over them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
import torch
from rasterio.crs import CRS
from rasterio.transform import from_origin
from rasterio.windows import from_bounds

from satcnn.data.scenes import RoadSceneDataModule

SCENE_ORIGIN = (500_000.0, 4_600_000.0)


def write_scene(
    root: Path,
    name: str,
    height: int = 96,
    width: int = 80,
    count: int = 4,
    dtype: str = "uint8",
    epsg: int = 32633,
    res: float = 0.5,
    seed: int = 0,
    offset: int = 0,
    mask_epsg: int | None = None,
    mask_res: float | None = None,
    mask_shape: tuple[int, int] | None = None,
    write_mask: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Write a seeded image (count bands) and a 0/255 mask; return both arrays."""
    rng = np.random.default_rng(seed)
    high = 200 if dtype == "uint8" else 60000
    image = (rng.integers(0, high, size=(count, height, width)) + offset).astype(dtype)
    mask = np.where(rng.random((height, width)) > 0.7, 255, 0).astype("uint8")
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    transform = from_origin(*SCENE_ORIGIN, res, res)
    profile = {"driver": "GTiff", "crs": CRS.from_epsg(epsg), "transform": transform}
    with rasterio.open(
        root / "images" / f"{name}.tif", "w", height=height, width=width, count=count, dtype=dtype, **profile
    ) as dst:
        dst.write(image)
    if write_mask:
        mh, mw = mask_shape or (height, width)
        mprofile = {
            "driver": "GTiff",
            "crs": CRS.from_epsg(mask_epsg or epsg),
            "transform": from_origin(*SCENE_ORIGIN, mask_res or res, mask_res or res),
        }
        with rasterio.open(
            root / "masks" / f"{name}.tif", "w", height=mh, width=mw, count=1, dtype="uint8", **mprofile
        ) as dst:
            dst.write(np.resize(mask, (mh, mw))[None])
    return image, mask


def make_dm(root: str, **kwargs: object) -> RoadSceneDataModule:
    """A DataModule with small test defaults (32 px patches overlapping by 8)."""
    kwargs.setdefault("patch_size", 32)
    kwargs.setdefault("val_overlap", 8)
    return RoadSceneDataModule(root, **kwargs)  # type: ignore[arg-type]


def set_nodata(root: Path, name: str, image: np.ndarray, block: tuple[slice, slice]) -> np.ndarray:
    """Fill ``block`` of every band with 255, tag 255 as nodata, and return the valid-pixel mask."""
    image = image.copy()
    image[(slice(None), *block)] = 255  # write_scene draws values below 200: no other 255s
    with rasterio.open(root / "images" / f"{name}.tif", "r+") as ds:
        ds.nodata = 255
        ds.write(image)
    valid = np.ones(image.shape[1:], bool)
    valid[block] = False
    return valid


def window_of(bounds: torch.Tensor, size: int) -> tuple[int, int]:
    """The (row, col) offset of a ``size`` px window of a ``write_scene`` scene (0.5 m) from its bounds."""
    win = from_bounds(*bounds.tolist(), transform=from_origin(*SCENE_ORIGIN, 0.5, 0.5))
    win = win.round_offsets().round_lengths()
    assert (win.height, win.width) == (size, size)
    return int(win.row_off), int(win.col_off)
