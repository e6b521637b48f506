"""The driver's side of a Ray run: the window index it writes, and the outputs it assembles.

The **window index** (``window_index.parquet`` in the output folder, written atomically before
the pipeline starts) has one row per model batch of every raster to compute (``kind`` is
``windows``), and one row per tile that gets one label (``kind`` is ``tile``): ``raster`` (its
position among the inputs), ``src`` (path or href), ``batch`` (the batch of the local runner's
window plan; for a tile, its batch among the run's tile batches), ``windows`` (windows in it),
``col_off``, ``row_off``, ``width``, ``height`` (the input pixels its windows span), ``bands``,
``output`` (the first output file; empty for a tile) and the raster's grid (``raster_width``,
``raster_height``, ``crs`` as WKT, ``transform`` as six numbers). Workers read
their rows' windows from ``src``, so inputs and outputs must be where every node sees them (a
shared file system, or an object store for the inputs).

Tiles that get one label are checked on the driver and planned into the batches that
``TileClassifier.stream`` would make of them (``TileBatch``): one Ray row each, their results
made on the driver. Each raster to compute is a ``RasterWork``: its output is written by the
same atomic COG writer, with the same tags, as by the local runner; the driver writes each
batch's arrays as they come back, in any order (a batch that comes back twice, after a retry,
is written once), and publishes the COG when its last batch is in. Only the batches in flight are in memory.
"""

from __future__ import annotations

import logging
import pickle
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.windows import Window, union

from satcnn.inference.classify import CLASS_NODATA
from satcnn.inference.engine import PredictStats, WindowPlan
from satcnn.inference.jobs import TileJob
from satcnn.inference.report import TileResult
from satcnn.io.atomic import atomic_output
from satcnn.io.cog import AtomicCOGWriter
from satcnn.io.raster import RasterInfo

logger = logging.getLogger(__name__)

__all__ = ["INDEX_NAME", "RasterWork", "TileBatch", "Work", "read_memory", "write_index"]

INDEX_NAME = "window_index.parquet"


@dataclass
class RasterWork:
    """One raster computed on the cluster, assembled on the driver.

    Attributes:
        position: Its place among the run's inputs.
        src: The input.
        outs: Its outputs (the first is assembled here; the others are derived from it).
        info: Its header.
        plan: The local runner's window plan of it.
        writer: The atomic writer of its first output.
        pending: Batches not yet written.
        read_s, model_s, write_s: Seconds its batches spent in each stage.
    """

    position: int
    src: Path
    outs: list[Path]
    info: RasterInfo
    plan: WindowPlan[Any]
    writer: AtomicCOGWriter
    pending: set[int] = field(default_factory=set)
    started: float = 0.0
    read_s: float = 0.0
    model_s: float = 0.0
    write_s: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.pending = set(range(len(self.plan.batches)))

    @property
    def windows(self) -> int:
        """Windows (or blocks) of the plan."""
        return sum(len(b) for b in self.plan.batches)

    @property
    def positions(self) -> list[int]:
        """Its place among the inputs, as a list."""
        return [self.position]

    @property
    def pixels(self) -> int:
        """Input pixels."""
        return self.info.width * self.info.height

    @property
    def read_bytes(self) -> int:
        """Most bytes a read task holds for it: a batch's windows as float32, and pickled."""
        areas = [sum(int(w.width * w.height) for w in map(self.plan.window, b)) for b in self.plan.batches]
        return 2 * 4 * self.info.count * max(areas)

    def tasks(self) -> list[dict[str, Any]]:
        """Its rows of the Ray dataset: one per batch (``sources``: its input path, pickled)."""
        sources = pickle.dumps([self.src], protocol=pickle.HIGHEST_PROTOCOL)
        return [
            {"raster": self.position, "src": str(self.src), "batch": b, "tiles": False, "sources": sources}
            for b in range(len(self.plan.batches))
        ]

    def add(
        self, index: int, arrays: list[tuple[np.ndarray, tuple[int, int, int, int]]], classes: list[str]
    ) -> bool:
        """Write batch ``index``'s arrays (once; a repeat is ignored); whether every batch is in.

        Raises:
            OutputError: The temporary cannot be written.
        """
        if index not in self.pending:
            return not self.pending
        t = time.perf_counter()
        if not self.started:
            self.started = t
            self.writer.open()
        for array, (col, row, width, height) in arrays:
            self.writer.write(array, Window(col, row, width, height))  # type: ignore[call-arg]
            if classes:
                kept = array[array != CLASS_NODATA]
                for i, n in enumerate(np.bincount(kept.ravel(), minlength=len(classes))[: len(classes)]):
                    self.counts[classes[i]] = self.counts.get(classes[i], 0) + int(n)
        self.pending.discard(index)
        self.write_s += time.perf_counter() - t
        return not self.pending

    def finish(self, job: TileJob, classes: list[str]) -> TileResult:
        """Publish the COG, write its derived outputs, and return the raster's result."""
        t = time.perf_counter()
        if not self.started:
            self.started = t
            self.writer.open()
        self.writer.close()
        finalize = time.perf_counter() - t
        stats = PredictStats(
            path=self.outs[0],
            pixels=self.info.width * self.info.height,
            windows=self.windows,
            seconds=time.perf_counter() - self.started,
            model_seconds=self.model_s,
            read_seconds=self.read_s,
            write_seconds=self.write_s,
            finalize_seconds=finalize,
            georeferenced=self.info.crs is not None,
        )
        counts = {c: self.counts.get(c, 0) for c in classes} if classes else None
        return job.finish(self.src, self.outs, stats, counts)

    def abort(self) -> None:
        """Drop the temporaries of an output that will not be published."""
        self.writer.abort()

    def rows(self) -> list[dict[str, Any]]:
        """Its rows of the window index."""
        info, plan = self.info, self.plan
        out = []
        for b, units in enumerate(plan.batches):
            span = union(*[plan.window(u) for u in units])
            out.append(
                {
                    "kind": "windows",
                    "raster": self.position,
                    "src": str(self.src),
                    "batch": b,
                    "windows": len(units),
                    "col_off": int(span.col_off),
                    "row_off": int(span.row_off),
                    "width": int(span.width),
                    "height": int(span.height),
                    "bands": info.count,
                    "output": str(self.outs[0]),
                    "raster_width": info.width,
                    "raster_height": info.height,
                    **_grid(info),
                }
            )
        return out


@dataclass
class TileBatch:
    """Tiles that get one label each, classified in one model batch on the cluster.

    Attributes:
        number: Its place among the run's tile batches.
        positions: The tiles' places among the run's inputs.
        srcs: The tiles.
        infos: Their headers (checked by the driver).
        bands: Bands the model reads from each.
        read_s, model_s, write_s: Seconds spent in each stage.
    """

    number: int
    positions: list[int]
    srcs: list[Path]
    infos: list[RasterInfo]
    bands: int
    read_s: float = 0.0
    model_s: float = 0.0
    write_s: float = 0.0

    @property
    def position(self) -> int:
        """The place of its first tile among the inputs."""
        return self.positions[0]

    @property
    def windows(self) -> int:
        """Tiles in it."""
        return len(self.srcs)

    @property
    def pixels(self) -> int:
        """Input pixels."""
        return sum(i.width * i.height for i in self.infos)

    @property
    def read_bytes(self) -> int:
        """Most bytes its read task holds: the tiles as float32, and pickled."""
        return 2 * 4 * self.bands * self.pixels

    def tasks(self) -> list[dict[str, Any]]:
        """Its row of the Ray dataset (``sources``: the tiles' paths, pickled)."""
        sources = pickle.dumps(self.srcs, protocol=pickle.HIGHEST_PROTOCOL)
        return [
            {
                "raster": self.position,
                "src": str(self.srcs[0]),
                "batch": self.number,
                "tiles": True,
                "sources": sources,
            }
        ]

    def rows(self) -> list[dict[str, Any]]:
        """Its rows of the window index: one per tile."""
        out = []
        for pos, src, info in zip(self.positions, self.srcs, self.infos, strict=True):
            out.append(
                {
                    "kind": "tile",
                    "raster": pos,
                    "src": str(src),
                    "batch": self.number,
                    "windows": 1,
                    "col_off": 0,
                    "row_off": 0,
                    "width": info.width,
                    "height": info.height,
                    "bands": self.bands,
                    "output": "",
                    "raster_width": info.width,
                    "raster_height": info.height,
                    **_grid(info),
                }
            )
        return out

    def abort(self) -> None:
        """Nothing to drop: its results are made on the driver."""


Work = RasterWork | TileBatch


def _grid(info: RasterInfo) -> dict[str, Any]:
    """The index columns of a raster's CRS (WKT, empty without one) and transform (six numbers)."""
    return {
        "crs": info.crs.to_wkt() if info.crs is not None else "",
        "transform": [float(v) for v in tuple(info.transform)[:6]],
    }


def write_index(path: Path, works: Sequence[Work]) -> list[dict[str, Any]]:
    """Write the window index of ``works`` to ``path`` (Parquet, atomically) and return its rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = "kind raster src batch windows col_off row_off width height bands output"
    names += " raster_width raster_height crs"
    types = {"kind": pa.string(), "src": pa.string(), "output": pa.string(), "crs": pa.string()}
    schema = pa.schema(
        [(n, types.get(n, pa.int64())) for n in names.split()] + [("transform", pa.list_(pa.float64()))]
    )
    rows = [r for w in works for r in w.rows()]
    table = pa.Table.from_pylist(rows, schema=schema)
    with atomic_output(path) as tmp:
        pq.write_table(table, tmp)
    rasters = [w for w in works if isinstance(w, RasterWork)]
    tiles = len(rows) - sum(len(w.plan.batches) for w in rasters)
    logger.info(
        "window index: %d batches of %d rasters, %d tiles in %d batches, in %s",
        len(rows) - tiles,
        len(rasters),
        tiles,
        len(works) - len(rasters),
        path,
    )
    return rows


def read_memory(works: Sequence[Work]) -> int:
    """Bytes a read task holds at most (``read_bytes`` of the largest work).

    Given to Ray as the read stage's ``memory``, so that a node is not given more reads than its
    memory holds. It also keeps the reads out of the model actors: Ray Data fuses a task stage
    into the actor stage after it when their resources are the same, and the actors would then
    read each batch themselves, in turn with the model, instead of being fed by tasks beside it.
    """
    return max(w.read_bytes for w in works)
