"""``RayEngine``: the tiles of a run computed by a Ray Data pipeline, assembled on the driver.

The driver (the ``satcnn infer`` process) checks every input as the local runner does (so a bad
input is reported once, naming it, and nothing is sent to the cluster for it), skips current
outputs, writes the window index, then runs::

    rows of the index -> read windows (tasks, cpus_per_reader CPUs and their batch's memory each,
                         which keeps Ray Data from fusing them into the actors)
                      -> predict (an actor pool: the model loaded once per actor, on its GPU)
                      -> the driver: write each batch into its output, publish it when complete

Ray retries what a lost worker or node was doing: Ray Data's defaults retry a task lost to a
system failure and restart a lost actor (and retry its calls) without limit, and its no-progress
guard fails a job that stops moving (``RAY_DATA_EXECUTION_NO_PROGRESS_TIMEOUT_S``, 30 minutes),
which the driver reports in one line. A tile's own problem comes back as a row and fails that
tile once; an error in satcnn's own code is not retried (Ray Data's ``max_map_retries`` is 0).

Tiles that get one label (a classifier's patch-sized tiles, every tile with ``per_tile``) are
checked on the driver (their headers and the input rule, so a bad tile is reported as on one
process), planned into the batches that the local runner would make of them, read by tasks and
classified by the same actors; their records (``predictions.csv``, metrics) are written by the
driver.
"""

from __future__ import annotations

import logging
import pickle
import time
from pathlib import Path
from typing import Any, NamedTuple

import torch
from rasterio.errors import RasterioError
from tqdm.auto import tqdm

from satcnn import errors
from satcnn.errors import ConfigError, SatcnnError
from satcnn.inference.budget import announce
from satcnn.inference.engine import InputReader, open_input, output_writer
from satcnn.inference.jobs import ClassificationTiles, TileJob
from satcnn.inference.options import InferenceOptions
from satcnn.inference.per_tile import Outcome as LabelOutcome
from satcnn.inference.per_tile import TileRead, plan_batches
from satcnn.inference.ray_engine.cluster import Resources, check_reachable, connect, plan_resources
from satcnn.inference.ray_engine.index import (
    INDEX_NAME,
    RasterWork,
    TileBatch,
    Work,
    read_memory,
    write_index,
)
from satcnn.inference.ray_engine.stages import Predict, StageSpec, TileSpec, read_windows
from satcnn.inference.report import InferenceReport, TileResult
from satcnn.inference.runner import Failure, failed_result
from satcnn.io.output_tags import is_current
from satcnn.io.raster import RasterInfo, open_dataset

logger = logging.getLogger(__name__)

__all__ = ["RayEngine"]

Outcome = TileResult | Failure


def _error(text: str) -> SatcnnError:
    """The ``SatcnnError`` a stage returned as ``"<Class>\\t<message>"``."""
    name, _, message = text.partition("\t")
    cls = getattr(errors, name, None)
    if not (isinstance(cls, type) and issubclass(cls, SatcnnError)):
        cls = errors.RasterError
    return cls(message)


class RayEngine:
    """The tiles of a run on a Ray cluster (``satcnn infer --engine ray``); see the module docstring."""

    def __init__(self, options: InferenceOptions) -> None:
        check_reachable(options.address)  # before the model is loaded or anything written
        self.options = options
        self.params: dict[str, Any] = {
            "engine": "ray",
            "ray_address": options.address or "local",
            "gpus_per_worker": options.gpus_per_worker,
            "cpus_per_reader": options.cpus_per_reader,
        }
        self.stages: dict[str, float] = {}

    def run(
        self, job: TileJob, inputs: list[Path], options: InferenceOptions, report: InferenceReport
    ) -> SatcnnError | None:
        """Process ``inputs`` into ``report`` (in input order); the error that stopped the run, if any."""
        results: dict[int, Outcome] = {}
        works = self._check(job, inputs, options, results)
        t = time.perf_counter()
        if not works:  # nothing to compute: an empty index, not the last run's
            write_index(options.out_dir / INDEX_NAME, [])
        else:
            try:
                self._pipeline(job, works, options, results, stop=not options.keep_going)
            finally:
                for w in works:
                    if w.position not in results:
                        w.abort()
        wall = time.perf_counter() - t
        error: SatcnnError | None = None
        labels = {p for w in works if isinstance(w, TileBatch) for p in w.positions}
        for pos in sorted(results):  # input order; rasters published after a stop too
            if error is not None and not options.keep_going and pos in labels:
                continue  # as on one process: no label after the input that stopped the run
            o = results[pos]
            result, err = o if isinstance(o, tuple) else (o, None)
            report.results.append(result)
            error = error or err
        self._figures(works, wall)
        return None if options.keep_going else error  # as on one process: failures are in the report

    def _check(
        self, job: TileJob, inputs: list[Path], options: InferenceOptions, results: dict[int, Outcome]
    ) -> list[Work]:
        """Check the inputs in order; the rasters and the batches of label tiles to compute.

        Without ``keep_going`` nothing after the first failing input is done, as on one process.
        """
        works: list[Work] = []
        run: list[_Checked] = []  # consecutive label tiles
        for pos, src in enumerate(inputs):
            t = time.perf_counter()
            if job.batched(src):
                assert job.tiles is not None
                try:
                    run.append(_Checked(pos, src, *job.tiles.reader.check(src)))
                except (SatcnnError, RasterioError) as err:
                    results[pos] = failed_result(src, err, time.perf_counter() - t)
                    run.append(_Checked(pos, src, None, None))
                    if not options.keep_going:
                        break
                continue
            works += _tile_batches(run, len([w for w in works if isinstance(w, TileBatch)]))
            run = []
            outs = job.outputs(src, options.out_dir)
            if outs and not options.overwrite and is_current(outs, job.expected_for(src)):
                logger.info("skipping %s: %s exists (use overwrite to redo)", src, outs[0])
                results[pos] = job.skipped(src, outs)
                continue
            try:
                version = job.version_of(src)  # asked by the staleness check, before the bytes
                info = open_input(src, outs[0], job.raster, job.settings)
                with open_dataset(src) as ds:
                    InputReader(ds, job.settings, src)  # the input rule's checks, before any output
                plan = job.raster.plan(info)
                writer = output_writer(src, outs[0], plan, job.settings, version)
                announce(src, outs[0], plan, writer)
            except (SatcnnError, RasterioError) as err:
                results[pos] = failed_result(src, err, time.perf_counter() - t)
                if not options.keep_going:
                    break
                continue
            works.append(RasterWork(pos, src, outs, info, plan, writer))
        return works + _tile_batches(run, len([w for w in works if isinstance(w, TileBatch)]))

    def _pipeline(
        self,
        job: TileJob,
        works: list[Work],
        options: InferenceOptions,
        results: dict[int, Outcome],
        stop: bool,
    ) -> None:
        by_key = {w.position: w for w in works}
        todo = {p for w in works for p in w.positions}
        classes = list(job.classes)
        limit, stopped = max(todo), False  # the last input to finish; lowered by a failure
        with connect(options.address) as ray:
            write_index(options.out_dir / INDEX_NAME, works)  # once the cluster answered
            tasks = [t for w in works for t in w.tasks()]  # rows of the Ray dataset
            res = plan_resources(
                ray.cluster_resources(), options.workers, options.gpus_per_worker, options.cpus_per_reader
            )
            self.params["workers"] = res.workers
            logger.info("ray: %d batches, %s", len(tasks), res)
            stream = self._dataset(ray, job, works, tasks, res).iter_rows()
            bar = tqdm(total=len(tasks), unit="batch", desc="infer (ray)", disable=not options.progress)
            try:
                for row in _guarded(stream):
                    bar.update(1)
                    work = by_key[int(row["raster"])]
                    if all(p in results for p in work.positions) or work.position > limit:
                        continue  # failed or done already (a repeat after a retry), or after a stop
                    work.read_s += float(row["read_s"])
                    work.model_s += float(row["model_s"])
                    if isinstance(work, TileBatch):
                        failed = _label(job, work, pickle.loads(row["payload"]), results, stop)
                    else:
                        failed = _assemble(job, work, row, classes, results)
                    if failed is not None and stop:  # as on one process: finish the inputs before it
                        limit, stopped = min(limit, failed), True
                    if stopped and all(p in results for p in todo if p <= limit):
                        return
            finally:
                bar.close()

    def _dataset(
        self, ray: Any, job: TileJob, works: list[Work], tasks: list[dict[str, Any]], res: Resources
    ) -> Any:
        logging.getLogger("ray.data").setLevel(logging.ERROR)  # the driver shows its own bar and errors
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        ctx.max_errored_blocks = 0
        spec = StageSpec(job.raster, job.settings, TileSpec.of(job.tiles) if job.tiles else None)
        ds = ray.data.from_items(tasks, override_num_blocks=len(tasks))
        ds = ds.map_batches(
            read_windows,
            batch_size=1,
            fn_kwargs={"spec": spec},
            num_cpus=res.reader_cpus,
            memory=read_memory(works),
        )
        return ds.map_batches(
            Predict,
            batch_size=1,
            fn_constructor_kwargs={
                "spec": spec,
                "model": job.model,
                "gpus": res.actor_gpus,
                "threads": torch.get_num_threads(),  # the local runner's: CPU results depend on it
            },
            compute=ray.data.ActorPoolStrategy(min_size=1, max_size=res.workers),
            num_cpus=res.actor_cpus,
            num_gpus=res.actor_gpus or None,
        )

    def _figures(self, works: list[Work], wall: float) -> None:
        """Per-stage seconds (summed over workers) and megapixels per second of each."""
        mp = sum(w.pixels for w in works) / 1e6
        for stage in ("read", "model", "write"):
            seconds = sum(getattr(w, f"{stage}_s") for w in works)
            self.stages[f"ray_{stage}_seconds"] = seconds
            self.stages[f"ray_{stage}_megapixels_per_s"] = mp / seconds if seconds > 0 else 0.0
        self.stages["ray_pipeline_seconds"] = wall
        self.stages["ray_windows"] = float(sum(w.windows for w in works))


class _Checked(NamedTuple):
    """A label tile as the driver checked it: its header and input shape, ``None`` if it failed."""

    position: int
    src: Path
    info: RasterInfo | None
    shape: tuple[int, int, int] | None


def _tile_batches(run: list[_Checked], first: int) -> list[TileBatch]:
    """The batches ``TileClassifier.stream`` makes of a run of consecutive label tiles, numbered
    from ``first`` (a tile that failed its check ends the batch before it)."""
    out = []
    for i, batch in enumerate(plan_batches([c.shape for c in run])):
        tiles = [run[k] for k in batch]
        infos = [c.info for c in tiles if c.info is not None]
        bands = tiles[0].shape[0] if tiles[0].shape else 0  # every tile of a batch has the same shape
        out.append(TileBatch(first + i, [c.position for c in tiles], [c.src for c in tiles], infos, bands))
    return out


def _assemble(
    job: TileJob, work: RasterWork, row: dict[str, Any], classes: list[str], results: dict[int, Outcome]
) -> int | None:
    """Write a row's arrays into its raster's output (published with its last batch); the
    raster's position when it failed."""
    try:
        if row["error"]:
            raise _error(str(row["error"]))
        if work.add(int(row["batch"]), pickle.loads(row["payload"]), classes):
            results[work.position] = work.finish(job, classes)
    except (SatcnnError, RasterioError) as err:
        work.abort()
        results[work.position] = failed_result(work.src, err, 0.0)
        return work.position
    return None


def _label(
    job: TileJob,
    work: TileBatch,
    labelled: list[tuple[TileRead, LabelOutcome]],
    results: dict[int, Outcome],
    stop: bool,
) -> int | None:
    """The results of a batch's label tiles (as ``process_many`` makes them); the first failed.

    With ``stop`` (no ``keep_going``) the tiles after the first failed get none, as on one process,
    though the worker classified them with the rest of their batch.
    """
    assert isinstance(job, ClassificationTiles)
    share = work.model_s / max(len(labelled), 1)
    for pos, (read, outcome) in zip(work.positions, labelled, strict=True):
        result = job.labelled(read, outcome, read.seconds + share)
        if isinstance(result, SatcnnError):
            results[pos] = failed_result(read.src, result, read.seconds)
            if stop:
                return pos
        else:
            results[pos] = result
    return None


def _guarded(stream: Any) -> Any:
    """``stream``'s rows; a failed or stalled Ray job becomes one ``ConfigError`` line."""
    try:
        yield from stream
    except (SatcnnError, KeyboardInterrupt):
        raise
    except Exception as err:
        if not type(err).__module__.startswith("ray"):
            raise
        text = str(err).strip().splitlines()
        name = type(err).__name__
        raise ConfigError(f"the Ray job failed ({name}): {text[0] if text else name}") from None
