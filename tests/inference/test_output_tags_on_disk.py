"""The tags ``satcnn infer`` writes are those it wrote before the schema (frozen from main), and an
output carrying them is current on a rerun."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from affine import Affine

from satcnn.inference import InferenceOptions, run_inference
from satcnn.models import create_model
from satcnn.models.checkpoint import CheckpointMeta, ModelSpec, save_checkpoint

# ds.tags() of the outputs main (before io/output_tags.py) wrote for these inputs, read back by
# rasterio; <model> is the checkpoint path, <digest> its weights digest.
RUN = {
    "SATCNN_BANDS": "auto",
    "SATCNN_MODEL": "<model>",
    "SATCNN_MODEL_DIGEST": "<digest>",
    "SATCNN_PRECISION": "32",
    "SATCNN_RESCALE": "strict",
    "SATCNN_TTA": "none",
    "AREA_OR_POINT": "Area",
}
PROB = {**RUN, "OVERVIEW_RESAMPLING": "AVERAGE", "SATCNN_SOURCE": "road.tif"}
MASK = {**RUN, "OVERVIEW_RESAMPLING": "NEAREST", "SATCNN_SOURCE": "road.tif", "SATCNN_THRESHOLD": "0.5"}
MAIN_TAGS = {
    "prob_uint8/road.tif": {**PROB, "SATCNN_OUTPUT": "prob_uint8"},
    "prob_float32/road.tif": {**PROB, "SATCNN_OUTPUT": "prob_float32"},
    "mask/road.tif": {**MASK, "SATCNN_OUTPUT": "mask"},
    "both/road.tif": {**PROB, "SATCNN_OUTPUT": "prob_uint8"},
    "both/road_mask.tif": {**MASK, "SATCNN_OUTPUT": "mask"},
    "class_map/cls.tif": {
        **RUN,
        "ALIGN": "center",
        "CLASS_0": "a",
        "CLASS_1": "b",
        "CLASS_2": "c",
        "CLASS_NAMES": '["a", "b", "c"]',
        "OVERVIEW_RESAMPLING": "NEAREST",
        "PATCH_SIZE": "28",
        "SATCNN_OUTPUT": "class_map",
        "SATCNN_SOURCE": "cls.tif",
        "STRIDE": "28",
    },
}
GRID = {"driver": "GTiff", "crs": "EPSG:32633", "transform": Affine(1, 0, 500000, 0, -1, 4000000)}


def _checkpoint(
    path: Path, name: str, kwargs: dict[str, int], task: str, bands: list[str], **meta: object
) -> Path:
    torch.manual_seed(0)
    model = create_model(name, **kwargs)
    spec = CheckpointMeta(
        task=task,  # type: ignore[arg-type]
        model=ModelSpec(name, kwargs),
        bands=bands,
        mean=[100.0] * len(bands),
        std=[40.0] * len(bands),
        **meta,  # type: ignore[arg-type]
    )
    return save_checkpoint(path, model, spec, extra={"epoch": 1})


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tags")
    unet = {"in_channels": 1, "num_classes": 1, "base_filters": 4, "depth": 2}
    road_meta = {"classes": ["background", "road"], "patch_size": 64, "input_dtype": "uint16"}
    _checkpoint(root / "road.ckpt", "unet", unet, "segmentation", ["pan"], **road_meta)
    cls_meta = {"classes": ["a", "b", "c"], "patch_size": 28, "input_dtype": "uint8"}
    bands = ["red", "green", "blue", "nir"]
    _checkpoint(
        root / "cls.ckpt",
        "deepsat_cnn",
        {"in_channels": 4, "num_classes": 3},
        "classification",
        bands,
        **cls_meta,
    )
    rng = np.random.default_rng(0)
    with rasterio.open(root / "road.tif", "w", count=1, height=96, width=96, dtype="uint16", **GRID) as ds:
        ds.write(rng.integers(0, 800, (1, 96, 96)).astype("uint16"))
    with rasterio.open(root / "cls.tif", "w", count=4, height=64, width=64, dtype="uint8", **GRID) as ds:
        ds.write(rng.integers(0, 255, (4, 64, 64)).astype("uint8"))
    return root


def _run(root: Path, out: Path, kind: str, **changes: object) -> list[str]:
    kw: dict[str, object] = {"track": False, "progress": False, **changes}
    if kind == "class_map":
        options = InferenceOptions(root / "cls.ckpt", root / "cls.tif", out / kind, **kw)  # type: ignore[arg-type]
    else:
        kw = {"window": 64, "margin": 8, "threshold": 0.5, **kw}
        options = InferenceOptions(root / "road.ckpt", root / "road.tif", out / kind, output_type=kind, **kw)  # type: ignore[arg-type]
    return [r.status for r in run_inference(options).results]


def test_outputs_carry_the_tags_main_wrote_and_stay_current(inputs: Path, tmp_path: Path) -> None:
    for kind in ("prob_uint8", "prob_float32", "mask", "both", "class_map"):
        assert _run(inputs, tmp_path, kind) == ["done"]
    written = {}
    for name in MAIN_TAGS:
        with rasterio.open(tmp_path / name) as ds:
            tags = ds.tags()
        model = inputs / ("cls.ckpt" if name.startswith("class_map") else "road.ckpt")
        assert tags["SATCNN_MODEL"] == str(model) and tags["SATCNN_MODEL_DIGEST"].startswith("sha256:")
        written[name] = {**tags, "SATCNN_MODEL": "<model>", "SATCNN_MODEL_DIGEST": "<digest>"}
    assert written == MAIN_TAGS
    # an output that carries main's tags (and this model's digest) is kept by a rerun ...
    for kind in ("prob_uint8", "prob_float32", "mask", "both", "class_map"):
        assert _run(inputs, tmp_path, kind) == ["skipped"], kind
    # ... and recomputed when a tag that decides its pixels differs
    assert _run(inputs, tmp_path, "mask", threshold=0.7) == ["done"]
    assert _run(inputs, tmp_path, "class_map", stride=14) == ["done"]
