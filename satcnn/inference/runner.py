"""Batch inference: a model and many GeoTIFF tiles in, one COG per tile out, resumable and tracked.

``run_inference(options)`` resolves the inputs (files, folders, globs, list files), loads the
model once, checks that no two inputs would write the same output, validates each tile before
computing on it, and writes ``<output_dir>/<input stem>.tif``:

* segmentation (road) models: a probability COG (``prob_uint8`` / ``prob_float32``), a 0/1 mask
  (``mask``), or both (``both``: the probability at ``<stem>.tif`` and the mask, thresholded from
  it, at ``<stem>_mask.tif``), on the input's grid;
* classifiers: a class-map COG (see ``classify_raster``) and ``class_fractions.csv`` with one row
  per tile (``tile, input, <class>...``), merged with the rows of earlier runs in the same folder;
  tiles of the model's patch size (every tile with ``per_tile``) get one label each instead, in
  ``predictions.csv``, with metrics for per-class input folders (``satcnn.inference.per_tile_records``);
* with ``vector``, road graphs or class polygons beside the COGs (``<stem>_roads.gpkg``,
  ``<stem>_classes.gpkg``); with ``allow_no_crs``, inputs without a CRS get outputs on their
  pixel grid without one.

Tiles that get one label are read ahead and classified in batches (``TileJob.process_many``);
their results, failures included, still come in input order. A warning about an input
(``satcnn.io.notes``: no CRS, a band tagged alpha that holds data) is logged once per run for all
the inputs it holds for, with their count and an example, after the manifest, which lists each
input's warnings.

Outputs are published atomically (``AtomicCOGWriter``), so a tile whose final output exists is
complete: a rerun skips it unless ``overwrite``, or unless it is stale: its tags (output type,
weights digest of the model, mask threshold, class-map stride; for a remote input its href and
the ETag or Last-Modified its server gives now; see ``satcnn.io.output_tags``) differ from this
run's, in which case it is recomputed. ``manifest.json`` records the model,
inputs, outputs, parameters, versions, timings and failures; the run is also logged to MLflow
(experiment ``satcnn-inference``) unless ``track=False``. Last, ``collection.json`` and
``items/<output stem>.json`` describe the folder's outputs as STAC (``satcnn.io.stac_collection``).

Scale-out: with ``num_shards = W`` (or ``WORLD_SIZE``/``RANK`` from torchrun, or
``SLURM_STEP_NUM_TASKS``/``SLURM_PROCID`` inside an ``srun`` step), shard ``r`` processes
``inputs[r::W]`` and writes its own outputs, ``manifest.rank<r>.json`` and
``class_fractions.rank<r>.csv`` (and its own MLflow run, tagged ``satcnn.shard``), but no STAC
catalogue (ranks would race on ``collection.json``). Concatenate
the per-rank CSVs, or rerun once without shards: every output then exists, nothing is
recomputed, and the fractions of skipped tiles are read back from their class maps, which gives
the full ``class_fractions.csv``.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any, Protocol

from rasterio.errors import NotGeoreferencedWarning, RasterioError
from tqdm.auto import tqdm

from satcnn.errors import ConfigError, InputFileNotFoundError, OutputError, RasterError, SatcnnError
from satcnn.inference.jobs import TileJob, tile_job
from satcnn.inference.launch import resolve_device, resolve_shard
from satcnn.inference.manifest import record_names, write_fractions, write_manifest, write_stac
from satcnn.inference.model_io import LoadedModel, load_model
from satcnn.inference.options import InferenceOptions
from satcnn.inference.outputs import check_output_names
from satcnn.inference.per_tile_records import write_per_tile_records
from satcnn.inference.report import InferenceReport, TileResult
from satcnn.inference.tracking import track_run
from satcnn.io.atomic import check_writable
from satcnn.io.inputs import resolve_inputs
from satcnn.io.notes import collecting
from satcnn.io.output_tags import is_current
from satcnn.io.remote import Href
from satcnn.io.stac_inputs import StacRequest, is_stac_spec

logger = logging.getLogger(__name__)

__all__ = [
    "Engine",
    "Failure",
    "LocalEngine",
    "failed_result",
    "outcomes",
    "run_inference",
    "write_records",
]

Failure = tuple[TileResult, SatcnnError]


def _named(err: SatcnnError, src: Path) -> SatcnnError:
    """``err`` if its message starts with the input ``src``, else a copy of it that does."""
    if err.path is not None and str(err).startswith(str(src)):
        return err
    named = err.__class__.__new__(err.__class__)
    named.__dict__.update(err.__dict__)
    named.args = (str(err) if str(err).startswith(str(src)) else f"{src}: {err}",)
    named.path = str(src)
    return named


def failed_result(src: Path, err: Exception, seconds: float) -> tuple[TileResult, SatcnnError]:
    """A failed result and the error naming the tile (a rasterio error becomes a ``RasterError``)."""
    if not isinstance(err, SatcnnError):
        err = RasterError(f"cannot read or write: {err}", src)
    named = err if isinstance(err, OutputError) else _named(err, src)
    logger.debug("%s failed", src, exc_info=err)  # the CLI prints the error once
    return TileResult(src, [], "failed", seconds=seconds, error=str(named)), named


def _process(job: TileJob, src: Path, outs: list[Path]) -> tuple[TileResult, SatcnnError | None]:
    """Compute one tile; a failure becomes a failed result and the error naming the tile."""
    t = time.perf_counter()
    try:
        return job.process(src, outs), None
    except (SatcnnError, RasterioError) as err:
        return failed_result(src, err, time.perf_counter() - t)


def outcomes(
    job: TileJob, inputs: list[Path], options: InferenceOptions
) -> Generator[TileResult | Failure, None, None]:
    """Each input's result or failure, in order: runs of ``batched`` inputs go through ``process_many``.

    An input whose outputs are current is skipped (unless ``overwrite``).
    """
    i = 0
    while i < len(inputs):
        j = i
        while j < len(inputs) and job.batched(inputs[j]):
            j += 1
        if j > i:
            t = time.perf_counter()
            many = job.process_many(inputs[i:j])
            try:
                for src, outcome in many:
                    yield (
                        failed_result(src, outcome, time.perf_counter() - t)
                        if isinstance(outcome, Exception)
                        else outcome
                    )
                    t = time.perf_counter()
            finally:
                many.close()  # a stop closes the readers
            i = j
            continue
        src = inputs[i]
        i += 1
        outs = job.outputs(src, options.out_dir)
        if outs and not options.overwrite and is_current(outs, job.expected_for(src)):
            logger.info("skipping %s: %s exists (use overwrite to redo)", src, outs[0])
            yield job.skipped(src, outs)
            continue
        result, error = _process(job, src, outs)
        yield result if error is None else (result, error)


def _run_tiles(
    job: TileJob, inputs: list[Path], options: InferenceOptions, report: InferenceReport
) -> SatcnnError | None:
    """Process this shard's inputs into ``report``; the error that stopped the run, if any."""
    outcomes_ = outcomes(job, inputs, options)
    try:
        for outcome in tqdm(
            outcomes_, total=len(inputs), unit="tile", desc="infer", disable=not options.progress
        ):
            result, error = outcome if isinstance(outcome, tuple) else (outcome, None)
            report.results.append(result)
            if error is not None and not options.keep_going:
                return error
    finally:
        outcomes_.close()
    return None


def write_records(
    report: InferenceReport,
    job: TileJob,
    lm: LoadedModel,
    digest: str,
    inputs: list[Path],
    params: dict[str, Any],
    out_dir: Path,
) -> None:
    """Write the class fractions (classifiers) and the manifest of this shard into ``out_dir``."""
    manifest_name, csv_name = record_names(report.shard)
    if job.classes:
        report.class_fractions_csv = out_dir / csv_name
        write_fractions(report.class_fractions_csv, job.classes, report.results)
        report.predictions_csv, report.metrics_json = write_per_tile_records(
            out_dir, report.shard, job.classes, report.results
        )
    report.manifest = out_dir / manifest_name
    write_manifest(report.manifest, report, lm, digest, inputs, params)
    logger.info(
        "inference: %d tiles done, %d skipped, %d failed; %.2f MP in %.1f s (%.3f MP/s)",
        len(report.done),
        len(report.skipped),
        len(report.failures),
        report.megapixels,
        report.seconds,
        report.megapixels_per_s,
    )


def _require_existing(inputs: Sequence[Path]) -> None:
    """Refuse the run when a local input does not exist: a mistyped path, not a bad tile.

    Checked before anything is written (no output folder, manifest or MLflow run), with or without
    ``keep_going``, which carries on past tiles that fail when read or computed.

    Raises:
        InputFileNotFoundError: naming the first missing input, and how many more there are.
    """
    missing = [p for p in inputs if not isinstance(p, Href) and not p.exists()]
    if missing:
        n = len(missing) - 1
        others = f"; {n:,} other input{'s' * (n > 1)} not found either (e.g. {missing[1]})" if n else ""
        raise InputFileNotFoundError(f"raster not found{others}; nothing was run", missing[0])


def stac_request(options: InferenceOptions, model_bands: Sequence[str]) -> StacRequest:
    """What the run asks of STAC items: ``--bands`` names, else the model's bands (``--bands``
    indexes: one asset read as it is), ``--asset``, ``--resample-to`` and the ``--stac`` search."""
    spec = options.band_spec
    names = None if spec and isinstance(spec[0], int) else tuple(str(b) for b in (spec or model_bands))
    return StacRequest(names, tuple(options.asset or ()), options.resample_to, options.stac_search)


class Engine(Protocol):
    """How a run computes its tiles: this process (``LocalEngine``) or a Ray cluster (``--engine ray``).

    Attributes:
        params: Settings of the engine, recorded with the run's parameters.
        stages: Per-stage figures of the run (seconds, throughput), logged as MLflow metrics.
    """

    params: dict[str, Any]
    stages: dict[str, float]

    def run(
        self, job: TileJob, inputs: list[Path], options: InferenceOptions, report: InferenceReport
    ) -> SatcnnError | None:
        """Process ``inputs`` into ``report``; the error that stopped the run, if any."""


class LocalEngine:
    """Every tile in this process, one after the other (the streaming engine overlaps its stages)."""

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}
        self.stages: dict[str, float] = {}

    def run(
        self, job: TileJob, inputs: list[Path], options: InferenceOptions, report: InferenceReport
    ) -> SatcnnError | None:
        """Process ``inputs`` into ``report`` in input order (see ``outcomes``)."""
        return _run_tiles(job, inputs, options, report)


def run_inference(options: InferenceOptions, engine: Engine | None = None) -> InferenceReport:
    """Run a satcnn model over many rasters and write one COG per raster (see the module docstring).

    Args:
        options: The run's options, checked when they were made.
        engine: Where the tiles are computed (default: this process, ``LocalEngine``); everything
            else (inputs, model, output names, skipping, records, tracking) is the same for all.

    Returns:
        The report; per-input failures are in ``report.failures`` when ``keep_going``.

    Raises:
        SatcnnError: Without ``keep_going``, the first input's error (naming the file), raised
            after the manifest is written (or, when the manifest cannot be written either, alone).
            Always, before any output is written: a model that cannot be loaded, no inputs, a
            local input that does not exist (``keep_going`` or not), a list file naming none, two
            inputs writing one output, an output folder that cannot be written (``OutputError``),
            settings the model or the machine cannot run.
    """
    t0 = time.perf_counter()
    start_ms = int(time.time() * 1000)
    index, count = resolve_shard(options.shard_index, options.num_shards)
    device = resolve_device(options.device)
    stac = options.stac is not None or any(is_stac_spec(s) for s in options.input_specs)
    all_inputs = [] if stac else resolve_inputs(options.input_specs)  # STAC items need the model's bands
    if not all_inputs and not stac:
        raise ConfigError("no inputs given")
    _require_existing(all_inputs)
    model = options.model
    lm = model if isinstance(model, LoadedModel) else load_model(model, device, options.tracking_uri)
    if stac:
        all_inputs = resolve_inputs(options.input_specs, stac_request(options, lm.bands))
        _require_existing(all_inputs)
    digest = lm.weights_digest
    job = tile_job(lm, options, device, digest)
    out_dir = options.out_dir
    check_output_names(job.writing(all_inputs), out_dir, job.suffixes, job.roles)
    check_writable(out_dir)

    mine = all_inputs[index::count]
    report = InferenceReport(lm.uri, lm.path, shard=(index, count))
    with warnings.catch_warnings(), collecting() as notes:
        # an input without a CRS or geotransform is refused in one line (check_crs), or, with
        # allow_no_crs, noted once for the run: rasterio's warning about it would only repeat it
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        first_error = (engine or LocalEngine()).run(job, mine, options, report)
    for r in report.results:
        r.warnings = notes.of(r.input)
    params: dict[str, Any] = {
        "model_uri": lm.uri,
        "model_path": str(lm.path),
        "model_digest": digest,
        "task": lm.task,
        "model_name": lm.meta["model"]["name"],
        "device": device,
        "overwrite": options.overwrite,
        "keep_going": options.keep_going,
        "shard_index": index,
        "num_shards": count,
        "num_inputs": len(all_inputs),
        **job.params,
        **(engine.params if engine else {}),
    }
    report.seconds = time.perf_counter() - t0
    try:
        write_records(report, job, lm, digest, mine, params, out_dir)
    except OutputError:
        if first_error is None:
            raise
        logger.debug("records not written after %s", first_error, exc_info=True)
        raise first_error from None  # the disk filled up: report the first failure, once
    finally:
        notes.flush(logger, report.manifest if report.manifest and report.manifest.exists() else None)
    if options.track:
        stages = engine.stages if engine else {}
        report.mlflow_run_id = track_run(report, lm, params, start_ms, options.tracking_uri, stages)
    try:
        report.stac_collection = write_stac(report, lm, options.tracking_uri, out_dir)
    except OutputError:
        if first_error is None:
            raise
        logger.debug("STAC catalogue not written after %s", first_error, exc_info=True)
    if first_error is not None:
        raise first_error
    return report
