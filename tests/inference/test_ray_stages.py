"""The Ray engine's read stage (``read_windows``) run in this process on the rows the driver plans,
and the window index it writes.

No cluster is needed: a stage is a plain function of a batch of rows, as Ray Data calls it on a
worker. Runs through a real cluster are in ``test_ray_engine.py``.
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from satcnn.inference import InferenceOptions
from satcnn.inference.engine import InputReader, open_input
from satcnn.inference.jobs import tile_job
from satcnn.inference.model_io import load_model
from satcnn.inference.ray_engine.index import RasterWork, TileBatch, write_index
from satcnn.inference.ray_engine.stages import StageSpec, TileSpec, read_windows
from satcnn.io.inputs import resolve_inputs
from satcnn.io.raster import open_dataset
from satcnn.io.stac_inputs import StacRequest, StacSource
from tests.factories import NAIP, crop, write_checkpoint
from tests.factories.stac import RGBN_NAMES, stac_item, write_stac


def _item(folder: Path, name: str, size: int) -> Path:
    """A STAC item of one 4-band asset, a ``size``-pixel crop of the NAIP sample, as an input path."""
    tif = crop(NAIP, folder / f"{name}.tif", size)
    doc = write_stac(folder / f"{name}.json", stac_item(name, tif, {"image": (str(tif), RGBN_NAMES)}, "c"))
    [src] = resolve_inputs([doc], StacRequest(RGBN_NAMES))
    assert isinstance(src, StacSource) and str(src) == str(doc)  # its str is the item, not a raster
    return src


def test_read_tasks_read_a_stac_items_assets_for_class_maps_and_labels(tmp_path: Path) -> None:
    ckpt = write_checkpoint(tmp_path / "sat6.ckpt")
    lm = load_model(ckpt)
    job = tile_job(lm, InferenceOptions(ckpt, tmp_path, tmp_path / "out", track=False), "cpu", "d")
    assert job.tiles is not None
    scene, patch = _item(tmp_path, "scene", 84), _item(tmp_path, "patch", 28)
    info = open_input(scene, tmp_path / "out" / "scene.tif", job.raster, job.settings)
    raster = RasterWork(0, scene, [tmp_path / "out" / "scene.tif"], info, job.raster.plan(info), None)  # type: ignore[arg-type]
    read, shape = job.tiles.reader.check(patch)
    rows = [*raster.tasks(), *TileBatch(0, [1], [patch], [read], shape[0]).tasks()]
    batch: dict[str, Any] = {k: np.array([r[k] for r in rows], dtype=object) for k in rows[0]}

    out = read_windows(batch, StageSpec(job.raster, job.settings, TileSpec.of(job.tiles)))

    assert list(out["error"]) == ["" for _ in rows]
    plan = raster.plan  # the first batch's windows, as the local runner reads them
    with open_dataset(scene) as ds:
        expected, _ = InputReader(ds, job.settings, scene).read([plan.window(u) for u in plan.batches[0]])
    np.testing.assert_array_equal(pickle.loads(out["payload"][0])[1], expected)
    [tile] = pickle.loads(out["payload"][-1])
    assert tile.error is None
    np.testing.assert_array_equal(tile.data, job.tiles.reader.read(patch).data)


def test_the_index_log_counts_tiles_apart_from_raster_batches(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ckpt = write_checkpoint(tmp_path / "sat6.ckpt")
    job = tile_job(load_model(ckpt), InferenceOptions(ckpt, tmp_path, tmp_path, track=False), "cpu", "d")
    assert job.tiles is not None
    tiles = [crop(NAIP, tmp_path / f"{i}.tif", 28) for i in range(3)]
    infos = [job.tiles.reader.check(t)[0] for t in tiles]
    with caplog.at_level(logging.INFO, logger="satcnn.inference.ray_engine.index"):
        rows = write_index(tmp_path / "index.parquet", [TileBatch(0, [0, 1, 2], tiles, infos, 4)])
    assert len(rows) == 3
    assert f"window index: 0 batches of 0 rasters, 3 tiles in 1 batches, in {tmp_path}" in caplog.text
