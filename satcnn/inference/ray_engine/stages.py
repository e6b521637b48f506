"""The two stages that run on the Ray cluster: read a batch of windows (tasks), predict it (actors).

Both take and give Ray Data batches of rows (``dict`` of columns). A row is one batch of the
local runner's window plan (``WindowPlan.batches[batch]``) of one raster, or (``tiles`` true) one
batch of tiles that get one label each, as ``TileClassifier.stream`` batches them; so the model
sees the same batches as on one process. ``sources`` holds the driver's input paths pickled (a
STAC item's path carries the assets it reads; its ``str`` is the item's href). Arrays travel pickled in a
``payload`` column (window sizes vary between rasters and plans). A problem of the tile itself
(``SatcnnError``, or a rasterio error turned into one) is returned in the ``error`` column (in
the ``TileRead`` of a tile given a label) rather than raised, so Ray does not retry it; anything
else (a worker killed, a node lost) is Ray's to retry.

Each worker process keeps the plans and the opened inputs of its last few rasters, so the input
rule (band selection, percentiles) runs once per raster and process, not once per batch.
"""

from __future__ import annotations

import pickle
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rasterio.errors import RasterioError
from rasterio.io import DatasetReader

from satcnn.errors import RasterError, SatcnnError
from satcnn.inference.device import prepare_model
from satcnn.inference.engine import InputReader, Model, RasterJob, StreamSettings, WindowPlan, compute_batch
from satcnn.inference.per_tile import TileClassifier, TileReader, read_ahead
from satcnn.io.raster import RasterInfo, gdal_cache_env, open_dataset
from satcnn.io.remote import as_path

__all__ = ["Predict", "StageSpec", "TileSpec", "error_of", "read_windows"]

Batch = dict[str, Any]
KEEP = 4
"""Rasters whose plan and opened input a worker process keeps."""


@dataclass(frozen=True)
class TileSpec:
    """How the run gives tiles one label each: ``TileClassifier``'s settings, without its model."""

    reader: TileReader
    classes: tuple[str, ...]
    stride: int
    precision: str
    tta: str

    @classmethod
    def of(cls, tiles: TileClassifier) -> TileSpec:
        """The settings of ``tiles``."""
        return cls(tiles.reader, tuple(tiles.classes), tiles.stride, tiles.precision, tiles.tta)


@dataclass(frozen=True)
class StageSpec:
    """What both stages need to know of the run (pickled to every task and actor).

    Attributes:
        raster: Plans a raster's windows (``SegmentationJob`` or ``ClassMapJob``).
        settings: The streaming engine's settings of the run (input rule, precision, device).
        tiles: How tiles get one label (classifiers), else ``None``.
    """

    raster: RasterJob
    settings: StreamSettings
    tiles: TileSpec | None = None


def error_of(err: BaseException, src: str) -> str:
    """A tile's problem as one line naming it, and its class: ``"<Class>\\t<message>"``."""
    if not isinstance(err, SatcnnError):
        err = RasterError(f"cannot read or write: {err}", src)
    message = str(err) if str(err).startswith(src) else f"{src}: {err}"
    return f"{type(err).__name__}\t{message}"


class _Inputs:
    """This process's plans and opened inputs of its last ``KEEP`` rasters."""

    def __init__(self) -> None:
        self.entries: OrderedDict[
            tuple[str, str], tuple[WindowPlan[Any], InputReader | None, ExitStack, RasterInfo]
        ] = OrderedDict()

    def get(
        self, spec: StageSpec, src: str, info: RasterInfo | None, path: Path | None = None
    ) -> tuple[WindowPlan[Any], InputReader | None, RasterInfo]:
        """The plan of ``src`` and, without ``info`` (a read task), its reader and header, opened
        from ``path`` (the driver's input path: a STAC item's carries its assets)."""
        key = (src, repr(spec.raster))
        entry = self.entries.get(key)
        if entry is not None and (entry[1] is not None or info is not None):
            self.entries.move_to_end(key)
            return entry[0], entry[1], entry[3]
        stack = ExitStack()
        try:
            reader = None
            if info is None:
                path = path or as_path(src)
                stack.enter_context(gdal_cache_env(spec.settings.gdal_cache_mb))
                ds = stack.enter_context(open_dataset(path))
                reader = InputReader(ds, spec.settings, path)
                info = _info(ds, path)
            plan = spec.raster.plan(info)
        except BaseException:
            stack.close()
            raise
        if entry is not None:
            entry[2].close()
        self.entries[key] = (plan, reader, stack, info)
        while len(self.entries) > KEEP:
            self.entries.popitem(last=False)[1][2].close()
        return plan, reader, info


_INPUTS = _Inputs()


def _rows(batch: Batch) -> list[dict[str, Any]]:
    keys = list(batch)
    return [{k: batch[k][i] for k in keys} for i in range(len(batch[keys[0]]))]


def _columns(rows: list[dict[str, Any]]) -> Batch:
    return {k: np.array([r[k] for r in rows], dtype=object) for k in rows[0]}


def _read_tiles(row: dict[str, Any], spec: StageSpec) -> dict[str, Any]:
    """Read a row's tiles whole: ``payload`` holds their ``TileRead``s (a tile's problem in it) pickled."""
    assert spec.tiles is not None
    t = time.perf_counter()
    with warnings.catch_warnings():  # the driver gave them when it checked the inputs
        warnings.simplefilter("ignore")
        reads = list(read_ahead(spec.tiles.reader, pickle.loads(row["sources"])))
    payload = pickle.dumps(reads, protocol=pickle.HIGHEST_PROTOCOL)
    return {**row, "payload": payload, "error": "", "read_s": time.perf_counter() - t}


def read_windows(batch: Batch, spec: StageSpec) -> Batch:
    """Read each row's windows (a Ray task): ``payload`` holds ``(info, x, valid)`` pickled."""
    out = []
    for row in _rows(batch):
        if row["tiles"]:
            out.append(_read_tiles(row, spec))
            continue
        src, index = str(row["src"]), int(row["batch"])
        t = time.perf_counter()
        payload, error = b"", ""
        try:
            with warnings.catch_warnings():  # the driver gave them when it checked the inputs
                warnings.simplefilter("ignore")
                plan, reader, info = _INPUTS.get(spec, src, None, pickle.loads(row["sources"])[0])
                assert reader is not None
                x, valid = reader.read([plan.window(u) for u in plan.batches[index]])
            payload = pickle.dumps((info, x, valid), protocol=pickle.HIGHEST_PROTOCOL)
        except (SatcnnError, RasterioError) as err:
            error = error_of(err, src)
        out.append({**row, "payload": payload, "error": error, "read_s": time.perf_counter() - t})
    return _columns(out)


def _info(ds: DatasetReader, path: Path) -> RasterInfo:
    """The header of the opened input ``ds`` (checked by the driver already)."""
    return RasterInfo(
        path,
        ds.crs,
        ds.transform,
        ds.width,
        ds.height,
        ds.count,
        ds.dtypes[0],
        ds.nodata,
        dict(ds.profile),
        tuple(ds.colorinterp),
    )


class Predict:
    """The model stage (a Ray actor, the model loaded once): windows in, encoded output arrays out.

    Args:
        spec: The run's plans and settings.
        model: The model (its ``nn.Module``, sent once to each actor).
        gpus: GPUs of this actor (``> 0``: the model runs on ``cuda``).
        threads: Torch threads of this actor: the driver's, as the local runner uses, since a CPU
            convolution's result can depend on the thread count (by a rounding).
    """

    def __init__(self, spec: StageSpec, model: Model, gpus: float, threads: int) -> None:
        device = torch.device("cuda") if gpus > 0 else spec.settings.device
        torch.set_num_threads(max(1, threads))
        self.spec = replace(spec, settings=replace(spec.settings, device=device))
        self.model: Callable[[torch.Tensor], torch.Tensor] = prepare_model(
            model, device, spec.settings.compile
        )
        t = spec.tiles
        self.tiles = None
        if t is not None and isinstance(model, torch.nn.Module):
            self.tiles = TileClassifier(model, t.classes, t.reader, t.stride, device, t.precision, t.tta)

    def _label(self, row: dict[str, Any]) -> dict[str, Any]:
        """Label a row's tiles: ``payload`` holds ``[(TileRead without pixels, outcome)]`` pickled."""
        assert self.tiles is not None
        t = time.perf_counter()
        reads = pickle.loads(row["payload"])
        labelled = [(replace(r, data=None, valid=None), o) for r, o in self.tiles.label(reads)]
        payload = pickle.dumps(labelled, protocol=pickle.HIGHEST_PROTOCOL)
        return {**row, "payload": payload, "error": "", "model_s": time.perf_counter() - t}

    def __call__(self, batch: Batch) -> Batch:
        """Each row's arrays: ``payload`` holds ``[(array, (col_off, row_off, width, height))]`` pickled."""
        out = []
        for row in _rows(batch):
            if row["error"]:
                out.append({**row, "payload": b"", "model_s": 0.0})
                continue
            if row["tiles"]:
                out.append(self._label(row))
                continue
            src, index = str(row["src"]), int(row["batch"])
            t = time.perf_counter()
            payload, error = b"", ""
            try:
                info, x, valid = pickle.loads(row["payload"])
                plan, _, _ = _INPUTS.get(self.spec, src, info)
                units = plan.batches[index]
                result, keep = compute_batch(plan, self.model, self.spec.settings, units, x, valid)
                arrays = [
                    (np.ascontiguousarray(a), (int(w.col_off), int(w.row_off), int(w.width), int(w.height)))
                    for a, w in plan.encode(units, result, keep, valid)
                ]
                payload = pickle.dumps(arrays, protocol=pickle.HIGHEST_PROTOCOL)
            except (SatcnnError, RasterioError) as err:
                error = error_of(err, src)
            out.append({**row, "payload": payload, "error": error, "model_s": time.perf_counter() - t})
        return _columns(out)
