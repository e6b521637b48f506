"""One pixel contract: a window with nodata gives the model identical inputs in training and inference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rasterio.crs import CRS
from rasterio.transform import from_origin

from satcnn.data.samplers import WindowRef
from satcnn.data.scene_index import find_scenes
from satcnn.data.scene_windows import SceneWindowDataset, collate_samples, to_float
from satcnn.inference.segment import predict_raster

SIZE, WINDOW = 64, 32
OFFSETS = [(0, 0), (0, 32), (32, 0), (32, 32)]  # row-major tiles of a 64 px raster, window 32, margin 0


class Recorder(torch.nn.Module):
    """Stand-in segmentation model: records every input batch, predicts probability 0.25."""

    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.inputs.append(x.detach().cpu().clone())
        return torch.full((x.shape[0], 1, *x.shape[2:]), 0.25)


def write_scene(root: Path) -> tuple[np.ndarray, np.ndarray]:
    """A 4-band uint8 scene with nodata 255 (Massachusetts style); return the image and valid pixels.

    GDAL tags band 4 of a 4-band uint8 GTiff as alpha; the model consumes band 4, so its zeros
    are data, not a mask.
    """
    rng = np.random.default_rng(5)
    image = rng.integers(0, 200, (4, SIZE, SIZE)).astype(np.uint8)
    image[:, 20:40, 10:50] = 255  # a nodata block across all four tiles' borders
    image[:, 5, 5] = 255  # one nodata pixel
    image[0, 50, 50] = 255  # 255 in one band only: a valid pixel
    image[3, 45:55, 0:20] = 0  # NIR zeros: valid
    valid = np.ones((SIZE, SIZE), bool)
    valid[20:40, 10:50] = False
    valid[5, 5] = False
    profile = {
        "driver": "GTiff",
        "crs": CRS.from_epsg(32633),
        "transform": from_origin(500_000.0, 4_600_000.0, 1.0, 1.0),
        "height": SIZE,
        "width": SIZE,
        "dtype": "uint8",
    }
    for folder in ("images", "masks"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    with rasterio.open(root / "images" / "s.tif", "w", count=4, nodata=255, **profile) as ds:
        ds.write(image)
    with rasterio.open(root / "masks" / "s.tif", "w", count=1, **profile) as ds:
        ds.write((rng.random((1, SIZE, SIZE)) > 0.8).astype(np.uint8))
    return image, valid


@pytest.mark.parametrize("grid", [False, True])
def test_training_and_inference_give_the_model_identical_inputs(tmp_path: Path, grid: bool) -> None:
    image, valid = write_scene(tmp_path)
    with rasterio.open(tmp_path / "images" / "s.tif") as ds:
        assert ds.colorinterp[3] == rasterio.enums.ColorInterp.alpha

    dataset = SceneWindowDataset(find_scenes(tmp_path), bands=4)
    owned = (0, WINDOW, 0, WINDOW) if grid else None
    # what a training step gets: the loader's batch (file dtype) made float32 by the transfer hook
    samples = [
        to_float(collate_samples([dataset[WindowRef(0, r, c, WINDOW, owned=owned)]])) for r, c in OFFSETS
    ]

    model = Recorder()
    dst = tmp_path / "prob.tif"
    predict_raster(
        model,
        tmp_path / "images" / "s.tif",
        dst,
        window=WINDOW,
        margin=0,
        batch_size=1,
        bands=4,
        output="prob_float32",
        progress=False,
        overviews=False,
    )
    assert len(model.inputs) == len(OFFSETS)
    for sample, seen, (r, c) in zip(samples, model.inputs, OFFSETS, strict=True):
        assert torch.equal(sample["image"][0], seen[0]), (r, c)  # bit for bit
        window_valid = valid[r : r + WINDOW, c : c + WINDOW]
        np.testing.assert_array_equal(sample["valid"][0, 0].numpy().astype(bool), window_valid)
        np.testing.assert_array_equal(
            seen[0].numpy(), np.where(window_valid, image[:, r : r + WINDOW, c : c + WINDOW], 0)
        )
    with rasterio.open(dst) as out:
        prob = out.read(1)
    np.testing.assert_array_equal(np.isnan(prob), ~valid)  # inference's nodata = training's invalid
    assert (prob[valid] == 0.25).all()
