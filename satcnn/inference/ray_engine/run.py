"""``RayEngine``: the tiles of a run computed by a Ray Data pipeline, assembled on the driver.

The driver (the ``satcnn infer`` process) checks every input as the local runner does (so a bad
input is reported once, naming it, and nothing is sent to the cluster for it), skips current
outputs, writes the window index, then runs::

    rows of the index -> read windows (tasks, cpus_per_reader CPUs each)
                      -> predict (an actor pool: the model loaded once per actor, on its GPU)
                      -> the driver: write each batch into its output, publish it when complete

Ray retries what a lost worker or node was doing: Ray Data's defaults retry a task lost to a
system failure and restart a lost actor (and retry its calls) without limit, and its no-progress
guard fails a job that stops moving (``RAY_DATA_EXECUTION_NO_PROGRESS_TIMEOUT_S``, 30 minutes),
which the driver reports in one line. A tile's own problem comes back as a row and fails that
tile once; an error in satcnn's own code is not retried (Ray Data's ``max_map_retries`` is 0). Tiles that get
one label (classifiers) are classified on the driver, as by the local runner.
"""

from __future__ import annotations

import logging
import pickle
import time
from pathlib import Path
from typing import Any

import torch
from rasterio.errors import RasterioError
from tqdm.auto import tqdm

from satcnn import errors
from satcnn.errors import ConfigError, SatcnnError
from satcnn.inference.budget import announce
from satcnn.inference.engine import InputReader, open_input, output_writer
from satcnn.inference.jobs import TileJob
from satcnn.inference.options import InferenceOptions
from satcnn.inference.ray_engine.cluster import Resources, connect, plan_resources
from satcnn.inference.ray_engine.index import INDEX_NAME, RasterWork, write_index
from satcnn.inference.ray_engine.stages import Predict, StageSpec, read_windows
from satcnn.inference.report import InferenceReport, TileResult
from satcnn.inference.runner import Failure, failed_result, outcomes
from satcnn.io.output_tags import is_current
from satcnn.io.raster import open_dataset

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
        works, labels = self._check(job, inputs, options, results)
        if labels:
            for pos, outcome in zip(labels, outcomes(job, [inputs[p] for p in labels], options), strict=True):
                results[pos] = outcome
        t = time.perf_counter()
        if works:
            try:
                self._pipeline(job, works, options, results, stop=not options.keep_going)
            finally:
                for w in works:
                    if w.position not in results:
                        w.abort()
        wall = time.perf_counter() - t
        error: SatcnnError | None = None
        for o in (results[p] for p in sorted(results)):  # input order; tiles finished after a stop too
            result, err = o if isinstance(o, tuple) else (o, None)
            report.results.append(result)
            error = error or err
        self._figures(works, wall)
        return error

    def _check(
        self, job: TileJob, inputs: list[Path], options: InferenceOptions, results: dict[int, Outcome]
    ) -> tuple[list[RasterWork], list[int]]:
        """Check the inputs in order; the rasters to compute and the positions of label tiles.

        Without ``keep_going`` nothing after the first failing input is done, as on one process.
        """
        works: list[RasterWork] = []
        labels: list[int] = []
        for pos, src in enumerate(inputs):
            if job.batched(src):
                labels.append(pos)
                continue
            outs = job.outputs(src, options.out_dir)
            if outs and not options.overwrite and is_current(outs, job.expected_for(src)):
                logger.info("skipping %s: %s exists (use overwrite to redo)", src, outs[0])
                results[pos] = job.skipped(src, outs)
                continue
            t = time.perf_counter()
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
        return works, labels

    def _pipeline(
        self,
        job: TileJob,
        works: list[RasterWork],
        options: InferenceOptions,
        results: dict[int, Outcome],
        stop: bool,
    ) -> None:
        rows = write_index(options.out_dir / INDEX_NAME, works)
        by_pos = {w.position: w for w in works}
        classes = list(job.classes)
        limit, stopped = max(by_pos), False  # the last input to finish; lowered by a failure
        with connect(options.address) as ray:
            res = plan_resources(
                ray.cluster_resources(), options.workers, options.gpus_per_worker, options.cpus_per_reader
            )
            self.params["workers"] = res.workers
            logger.info("ray: %d batches, %s", len(rows), res)
            stream = self._dataset(ray, job, rows, res).iter_rows()
            bar = tqdm(total=len(rows), unit="batch", desc="infer (ray)", disable=not options.progress)
            try:
                for row in _guarded(stream):
                    bar.update(1)
                    work = by_pos[int(row["raster"])]
                    if work.position in results or work.position > limit:
                        continue  # failed or done already (a repeat after a retry), or after a stop
                    work.read_s += float(row["read_s"])
                    work.model_s += float(row["model_s"])
                    try:
                        if row["error"]:
                            raise _error(str(row["error"]))
                        arrays = pickle.loads(row["payload"])
                        if work.add(int(row["batch"]), arrays, classes):
                            results[work.position] = work.finish(job, classes)
                    except (SatcnnError, RasterioError) as err:
                        work.abort()
                        results[work.position] = failed_result(work.src, err, 0.0)
                        if stop:  # as on one process: finish the inputs before it, drop those after
                            limit, stopped = min(limit, work.position), True
                    if stopped and all(p in results for p in by_pos if p <= limit):
                        return
            finally:
                bar.close()

    def _dataset(self, ray: Any, job: TileJob, rows: list[dict[str, Any]], res: Resources) -> Any:
        logging.getLogger("ray.data").setLevel(logging.ERROR)  # the driver shows its own bar and errors
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        ctx.max_errored_blocks = 0
        spec = StageSpec(job.raster, job.settings)
        keep = [{k: r[k] for k in ("raster", "src", "batch")} for r in rows]
        ds = ray.data.from_items(keep, override_num_blocks=len(keep))
        ds = ds.map_batches(
            read_windows,
            batch_size=1,
            fn_kwargs={"spec": spec},
            num_cpus=res.reader_cpus,
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

    def _figures(self, works: list[RasterWork], wall: float) -> None:
        """Per-stage seconds (summed over workers) and megapixels per second of each."""
        mp = sum(w.info.width * w.info.height for w in works) / 1e6
        for stage in ("read", "model", "write"):
            seconds = sum(getattr(w, f"{stage}_s") for w in works)
            self.stages[f"ray_{stage}_seconds"] = seconds
            self.stages[f"ray_{stage}_megapixels_per_s"] = mp / seconds if seconds > 0 else 0.0
        self.stages["ray_pipeline_seconds"] = wall
        self.stages["ray_windows"] = float(sum(w.windows for w in works))


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
