"""Batch inference: a model and many GeoTIFF tiles in, one COG per tile out, resumable and tracked.

``run_inference`` resolves the inputs (files, folders, globs, list files), loads the model once,
validates each tile before computing on it, and writes ``<output_dir>/<input stem>.tif``:

* segmentation (road) models: a probability COG (``prob_uint8`` / ``prob_float32``), a 0/1 mask
  (``mask``), or both (``both``: the probability at ``<stem>.tif`` and the mask, thresholded from
  it, at ``<stem>_mask.tif``), on the input's grid;
* classifiers: a class-map COG (see ``classify_raster``) and ``class_fractions.csv`` with one row
  per tile (``tile, input, <class>...``), merged with the rows of earlier runs in the same folder.

Outputs are published atomically (``AtomicCOGWriter``), so a tile whose final output exists is
complete: a rerun skips it unless ``overwrite``, or unless the output's tags (``SATCNN_OUTPUT``,
``SATCNN_MODEL``, ``SATCNN_THRESHOLD`` of masks, ``STRIDE`` of class maps) differ from the request,
in which case it is recomputed. ``manifest.json`` records the model, inputs,
outputs, parameters, versions, timings and failures; the run is also logged to MLflow
(experiment ``satcnn-inference``) unless ``track=False``.

Scale-out: with ``num_shards = W`` (or ``WORLD_SIZE``/``RANK`` from torchrun, or
``SLURM_STEP_NUM_TASKS``/``SLURM_PROCID`` inside an ``srun`` step), shard ``r`` processes
``inputs[r::W]`` and writes its own
outputs, ``manifest.rank<r>.json`` and ``class_fractions.rank<r>.csv`` (and its own MLflow run,
tagged ``satcnn.shard``). Concatenate the per-rank CSVs, or rerun once without shards: every
output then exists, nothing is recomputed, and the fractions of skipped tiles are read back from
their class maps, which gives the full ``class_fractions.csv``.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal

import numpy as np
import rasterio
import torch
from rasterio.errors import RasterioError
from torch import nn
from tqdm.auto import tqdm

from satcnn import __version__
from satcnn.errors import ConfigError, InputFileNotFoundError, ModelError, RasterError, SatcnnError
from satcnn.inference.model_io import LoadedModel, SlidingPatchClassifier, StridedFCN, load_model
from satcnn.inference.predict import CLASS_NODATA, UINT8_SCALE, classify_raster, predict_raster
from satcnn.inference.windows import axis_spans
from satcnn.io.atomic import write_text_atomic
from satcnn.io.cog import AtomicCOGWriter
from satcnn.io.raster import open_raster

logger = logging.getLogger(__name__)

__all__ = [
    "EXPERIMENT",
    "InferenceReport",
    "OutputType",
    "TileResult",
    "resolve_device",
    "resolve_inputs",
    "run_inference",
    "shard_from_env",
]

OutputType = Literal["prob_uint8", "prob_float32", "mask", "both"]
EXPERIMENT = "satcnn-inference"
RASTER_SUFFIXES = (".tif", ".tiff")
LIST_SUFFIXES = (".txt", ".lst", ".list")
_GLOB_CHARS = set("*?[")


@dataclass
class TileResult:
    """What happened to one input.

    Attributes:
        input: The input raster.
        outputs: Its output files (present when ``status`` is ``done`` or ``skipped``).
        status: ``done``, ``skipped`` (outputs existed), or ``failed``.
        pixels: Input pixels processed (0 unless done).
        seconds: Wall time spent on it.
        error: The problem, for failed inputs (starts with the input path).
        class_fractions: Share of each class (classifiers).
    """

    input: Path
    outputs: list[Path]
    status: Literal["done", "skipped", "failed"]
    pixels: int = 0
    seconds: float = 0.0
    error: str | None = None
    class_fractions: dict[str, float] | None = None


@dataclass
class InferenceReport:
    """Summary of ``run_inference``.

    Attributes:
        model_uri: The model as given.
        model_path: The checkpoint read.
        results: One per input of this shard, in order (inputs after a failure without
            ``keep_going`` are absent).
        seconds: Wall time of the whole run.
        shard: ``(index, count)``.
        manifest: Path of the manifest written.
        class_fractions_csv: Path of the CSV (classifiers), else None.
        mlflow_run_id: The inference's MLflow run, when tracked.
    """

    model_uri: str
    model_path: Path
    results: list[TileResult] = field(default_factory=list)
    seconds: float = 0.0
    shard: tuple[int, int] = (0, 1)
    manifest: Path | None = None
    class_fractions_csv: Path | None = None
    mlflow_run_id: str | None = None

    @property
    def done(self) -> list[TileResult]:
        """Inputs computed in this run."""
        return [r for r in self.results if r.status == "done"]

    @property
    def skipped(self) -> list[TileResult]:
        """Inputs whose outputs already existed."""
        return [r for r in self.results if r.status == "skipped"]

    @property
    def failures(self) -> list[TileResult]:
        """Inputs that failed."""
        return [r for r in self.results if r.status == "failed"]

    @property
    def ok(self) -> bool:
        """Whether no input failed."""
        return not self.failures

    @property
    def megapixels(self) -> float:
        """Input megapixels computed in this run."""
        return sum(r.pixels for r in self.done) / 1e6

    @property
    def megapixels_per_s(self) -> float:
        """Computed megapixels per second of the whole run's wall time."""
        return self.megapixels / self.seconds if self.seconds > 0 else 0.0


# -- inputs and shards ---------------------------------------------------------------------------
def _list_file(path: Path) -> list[Path]:
    out = []
    for line in path.read_text().splitlines():
        entry = line.strip()
        if entry and not entry.startswith("#"):
            p = Path(entry).expanduser()
            out.append(p if p.is_absolute() else path.parent / p)
    return out


def resolve_inputs(specs: Sequence[str | Path]) -> list[Path]:
    """Expand input specifications into raster paths (order kept, duplicates dropped).

    Each spec is a raster path, a folder (its ``*.tif``/``*.tiff``, sorted, not recursive, without
    hidden dot-files such as ``AtomicCOGWriter``'s ``.<name>.tmp.tif`` temporaries), a
    glob pattern (sorted matches), or a list file (``.txt``/``.lst``/``.list``: one path per line,
    relative to the list file; ``#`` starts a comment). Paths that do not exist are kept, so each
    becomes a per-file error naming it.

    Raises:
        InputFileNotFoundError: A folder holds no GeoTIFF or a glob matches nothing.
    """
    found: list[Path] = []
    for spec in specs:
        p = Path(spec).expanduser()
        if p.is_dir():
            tifs = sorted(
                q
                for q in p.iterdir()
                if q.is_file() and q.suffix.lower() in RASTER_SUFFIXES and not q.name.startswith(".")
            )
            if not tifs:
                raise InputFileNotFoundError("folder holds no GeoTIFF (*.tif, *.tiff)", p)
            found += tifs
        elif p.is_file() and p.suffix.lower() in LIST_SUFFIXES:
            found += _list_file(p)
        elif not p.exists() and _GLOB_CHARS & set(str(spec)):
            matches = sorted(Path(m) for m in glob.glob(str(p)) if Path(m).is_file())
            if not matches:
                raise InputFileNotFoundError("pattern matches no file", str(spec))
            found += matches
        else:
            found.append(p)
    seen: set[Path] = set()
    unique = []
    for q in found:
        key = Path(os.path.abspath(q))  # not resolve(): symlinked copies are distinct tiles
        if key not in seen:
            seen.add(key)
            unique.append(q)
    return unique


def shard_from_env(env: dict[str, str] | None = None) -> tuple[int, int]:
    """``(index, count)`` of this process from the launcher's environment; else ``(0, 1)``.

    torchrun's ``RANK``/``WORLD_SIZE`` (global over all nodes), then SLURM's
    ``SLURM_PROCID``/``SLURM_STEP_NUM_TASKS``, which exist only inside an ``srun`` step: a plain
    ``sbatch`` script (``SLURM_NTASKS`` set for the allocation, one process) runs every tile.
    ``LOCAL_RANK`` is not used: it restarts on each node, so shards would repeat across nodes.

    Raises:
        ConfigError: The variables are not integers.
    """
    env = dict(os.environ if env is None else env)
    for rank_key, size_key in (
        ("RANK", "WORLD_SIZE"),
        ("SLURM_PROCID", "SLURM_STEP_NUM_TASKS"),
    ):
        if rank_key in env and size_key in env:
            try:
                return int(env[rank_key]), int(env[size_key])
            except ValueError:
                raise ConfigError(
                    f"{rank_key}={env[rank_key]!r} / {size_key}={env[size_key]!r} are not integers"
                ) from None
    return 0, 1


def resolve_device(device: str, env: dict[str, str] | None = None) -> str:
    """Check ``device`` and pin plain ``cuda`` to ``cuda:<LOCAL_RANK>`` under torchrun.

    Raises:
        ConfigError: A CUDA device is asked for but CUDA is not available, or the name is invalid.
    """
    env = dict(os.environ if env is None else env)
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise ConfigError(f"invalid device {device!r}: {err}") from None
    if dev.type != "cuda":
        return device
    if not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} asked for but CUDA is not available here; use --device cpu")
    if dev.index is None and env.get("LOCAL_RANK", "").isdigit():
        return f"cuda:{int(env['LOCAL_RANK'])}"
    return device


def _check_shard(index: int, count: int) -> None:
    if count < 1 or not 0 <= index < count:
        raise ConfigError(f"shard index {index} must be in [0, {count}) with at least one shard")


# -- per-tile processing ---------------------------------------------------------------------------
def _open_checked(path: Path, lm: LoadedModel, min_size: int | None) -> None:
    open_raster(
        path,
        bands=len(lm.bands),
        dtypes=[lm.input_dtype] if lm.input_dtype else None,
        min_size=min_size,
        require_crs=True,
    )


def _classifier(lm: LoadedModel, stride: int) -> nn.Module:
    """A dense scorer for classify_raster: the FCN (subsampled to ``stride``) or a patch slider."""
    inner = lm.module.model
    patch = lm.patch_size
    assert patch is not None
    if inner.fully_convolutional and stride % inner.output_stride == 0:
        return StridedFCN(lm.module.as_fully_convolutional(), stride // inner.output_stride).eval()
    logger.info(
        "classifying %d x %d patches one by one (no fully convolutional form at stride %d)",
        patch,
        patch,
        stride,
    )
    return SlidingPatchClassifier(lm.module, patch, stride).eval()


def _class_fractions_of(path: Path, classes: Sequence[str]) -> dict[str, float]:
    """Class shares of an existing class map (nodata excluded)."""
    counts = np.zeros(len(classes), np.int64)
    with rasterio.open(path) as ds:
        for _, win in ds.block_windows(1):
            a = ds.read(1, window=win)
            counts += np.bincount(a[a != CLASS_NODATA].ravel(), minlength=len(classes))[: len(classes)]
    total = int(counts.sum())
    return {c: (int(n) / total if total else 0.0) for c, n in zip(classes, counts, strict=True)}


def _mask_from_probability(prob: Path, dst: Path, threshold: float) -> None:
    """Threshold a ``prob_uint8`` COG into a 0/1 mask COG (255 stays nodata), block by block."""
    with rasterio.open(prob) as ds:
        profile = {k: ds.profile[k] for k in ("crs", "transform", "width", "height")}
        profile.update(count=1, dtype="uint8", nodata=255)
        tags = {**ds.tags(), "SATCNN_OUTPUT": "mask", "SATCNN_THRESHOLD": threshold}
        with AtomicCOGWriter(
            dst, profile, overview_resampling="nearest", tags=tags, band_descriptions=["road_mask"]
        ) as w:
            for _, win in ds.block_windows(1):
                a = ds.read(1, window=win)
                m = (a.astype(np.float32) / UINT8_SCALE >= threshold).astype(np.uint8)
                m[a == 255] = 255
                w.write(m, win)


def _stale_reason(path: Path, expected: dict[str, str | int | float]) -> str | None:
    """Why the existing output ``path`` does not answer the request ``expected`` (its tags), or None."""
    try:
        with rasterio.open(path) as ds:
            tags = ds.tags()
    except RasterioError as err:
        return f"{path} is unreadable ({err})"
    for key, want in expected.items():
        have = tags.get(key)
        if isinstance(want, int | float) and not isinstance(want, bool):
            try:
                same = have is not None and float(have) == float(want)
            except ValueError:
                same = False
        else:
            same = have == str(want)
        if not same:
            return f"{path} has {key}={have!r}, this run asks for {want!r}"
    return None


def _output_paths(src: Path, out_dir: Path, task: str, output: OutputType) -> list[Path]:
    main = out_dir / f"{src.stem}.tif"
    if task != "classification" and output == "both":
        return [main, out_dir / f"{src.stem}_mask.tif"]
    return [main]


# -- records -----------------------------------------------------------------------------------------
def _write_fractions(path: Path, classes: list[str], results: list[TileResult]) -> None:
    """Write ``path`` with this run's rows merged over the earlier rows of other tiles."""
    header = ["tile", "input", *classes]
    rows: dict[str, dict[str, str]] = {}
    if path.exists():
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames == header:
                rows = {r["tile"]: r for r in reader}
            else:
                logger.warning("%s has other columns (%s); its rows are replaced", path, reader.fieldnames)
    for r in results:
        if r.class_fractions is not None:
            rows[r.input.stem] = {
                "tile": r.input.stem,
                "input": str(r.input),
                **{c: f"{r.class_fractions[c]:.6f}" for c in classes},
            }
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    for key in sorted(rows):
        writer.writerow(rows[key])
    write_text_atomic(path, buf.getvalue())


def _versions() -> dict[str, str]:
    def v(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "unknown"

    return {
        "satcnn": __version__,
        "torch": torch.__version__,
        "rasterio": rasterio.__version__,
        "mlflow": v("mlflow"),
    }


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    return obj


def _track(
    report: InferenceReport, lm: LoadedModel, params: dict[str, Any], start_ms: int, tracking_uri: str | None
) -> str | None:
    """Log the run to MLflow; a tracking failure is logged, not raised (the outputs are done).

    Uses the training logger's safeguards: the store-creation lock, a client retrying while SQLite
    is locked, and a race-safe get-or-create of the experiment. A run whose logging fails after it
    was created is marked FAILED.
    """
    from mlflow import MlflowClient

    from satcnn.tracking.mlflow import (
        _get_or_create_experiment,
        _RetryingClient,
        _store_init_lock,
        default_tracking_uri,
    )

    store = tracking_uri or default_tracking_uri()
    client: Any = None
    run_id: str | None = None
    try:
        with _store_init_lock(store):
            client = _RetryingClient(MlflowClient(tracking_uri=store))
            exp_id = _get_or_create_experiment(client, EXPERIMENT, None)
        tags = {"satcnn.model_uri": report.model_uri, "satcnn.task": lm.task}
        if lm.source_run_id:
            tags["satcnn.source_run_id"] = lm.source_run_id
        if report.shard[1] > 1:
            tags["satcnn.shard"] = f"{report.shard[0]}/{report.shard[1]}"
        run = client.create_run(exp_id, start_time=start_ms, tags=tags, run_name="infer")
        run_id = run.info.run_id
        from mlflow.entities import Metric, Param

        now = int(time.time() * 1000)
        metrics = {
            "tiles": len(report.done),
            "tiles_skipped": len(report.skipped),
            "tiles_failed": len(report.failures),
            "megapixels": report.megapixels,
            "seconds": report.seconds,
            "megapixels_per_s": report.megapixels_per_s,
        }
        client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
            params=[Param(k, str(v)[:6000]) for k, v in params.items()],
        )
        if report.manifest is not None:
            client.log_artifact(run_id, str(report.manifest))
        if report.class_fractions_csv is not None and report.class_fractions_csv.exists():
            client.log_artifact(run_id, str(report.class_fractions_csv))
        client.set_terminated(run_id, "FINISHED" if report.ok else "FAILED")
        logger.info("inference tracked as MLflow run %s in %s", run_id, store)
        return str(run_id)
    except Exception as err:  # tracking must not lose finished outputs
        logger.warning("could not log the inference to MLflow at %s: %s", store, err)
        if client is not None and run_id is not None:
            try:
                client.set_terminated(run_id, "FAILED")
            except Exception:
                logger.warning("could not mark MLflow run %s as FAILED", run_id, exc_info=True)
        return None


# -- the runner ------------------------------------------------------------------------------------
def run_inference(
    model_uri: str | Path | LoadedModel,
    inputs: str | Path | Sequence[str | Path],
    output_dir: str | Path,
    *,
    window: int | None = None,
    margin: int = 32,
    batch_size: int = 4,
    output: OutputType = "prob_uint8",
    threshold: float = 0.5,
    stride: int | None = None,
    block: int = 2048,
    overwrite: bool = False,
    keep_going: bool = False,
    device: str = "cpu",
    progress: bool = True,
    track: bool = True,
    tracking_uri: str | None = None,
    shard_index: int | None = None,
    num_shards: int | None = None,
) -> InferenceReport:
    """Run a satcnn model over many rasters and write one COG per raster (see the module docstring).

    Args:
        model_uri: Checkpoint path, ``runs:/...`` or ``models:/...`` URI (see ``load_model``), or a
            model already loaded.
        inputs: Raster paths, folders, globs or list files.
        output_dir: Output folder (created if needed).
        window: Road models: window side (default ``max(patch_size, 512)`` rounded up to the
            model's ``size_multiple``).
        margin: Road models: context pixels on each side of a window's core.
        batch_size: Road models: windows per forward pass.
        output: Road models: ``prob_uint8``, ``prob_float32``, ``mask`` or ``both``.
        threshold: Road models: probability threshold of the mask.
        stride: Classifiers: class-map stride in input pixels (default: the patch size).
        block: Classifiers: block side in input pixels.
        overwrite: Recompute inputs whose outputs exist (default: skip them).
        keep_going: Record a failing input and go on; otherwise stop at the first failure.
        device: Torch device; plain ``cuda`` under torchrun means ``cuda:<LOCAL_RANK>``.
        progress: Show progress bars.
        track: Log the run to MLflow (experiment ``satcnn-inference``).
        tracking_uri: MLflow store (default ``default_tracking_uri()``).
        shard_index: This process's shard (default from the environment, see ``shard_from_env``).
        num_shards: Number of shards.

    Returns:
        The report; per-input failures are in ``report.failures`` when ``keep_going``.

    Raises:
        SatcnnError: Without ``keep_going``, the first input's error (naming the file), raised
            after the manifest is written. Always: a model that cannot be loaded, no inputs,
            invalid settings.
    """
    t0 = time.perf_counter()
    start_ms = int(time.time() * 1000)
    env_index, env_count = shard_from_env()
    index = env_index if shard_index is None else shard_index
    count = env_count if num_shards is None else num_shards
    if shard_index is not None and num_shards is None and env_count == 1:
        raise ConfigError("shard_index given without num_shards")
    _check_shard(index, count)
    if output not in ("prob_uint8", "prob_float32", "mask", "both"):
        raise ConfigError(f"output must be prob_uint8, prob_float32, mask or both, got {output!r}")
    if not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"threshold must be in [0, 1], got {threshold}")

    device = resolve_device(device)
    all_inputs = resolve_inputs([inputs] if isinstance(inputs, str | Path) else list(inputs))
    if not all_inputs:
        raise ConfigError("no inputs given")
    stems: dict[str, Path] = {}
    for p in all_inputs:
        if p.stem in stems:
            raise ConfigError(f"inputs {stems[p.stem]} and {p} would both write {p.stem}.tif; rename one")
        stems[p.stem] = p

    lm = model_uri if isinstance(model_uri, LoadedModel) else load_model(model_uri, device, tracking_uri)
    out_dir = Path(output_dir).expanduser()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot create the output folder {out_dir}: {err}") from None

    classifier = lm.task == "classification"
    params: dict[str, Any] = {
        "model_uri": lm.uri,
        "model_path": str(lm.path),
        "task": lm.task,
        "model_name": lm.meta["model"]["name"],
        "device": device,
        "overwrite": overwrite,
        "keep_going": keep_going,
        "shard_index": index,
        "num_shards": count,
        "num_inputs": len(all_inputs),
    }
    process: Callable[[Path, list[Path]], TileResult]
    if classifier:
        patch = lm.patch_size
        if not patch:
            raise ModelError("the classifier checkpoint records no patch_size", lm.path)
        if not lm.classes:
            raise ModelError("the classifier checkpoint records no class names", lm.path)
        S = stride or int(patch)
        if S < 1:
            raise ConfigError(f"stride must be >= 1, got {S}")
        scorer = _classifier(lm, S)
        params.update(stride=S, patch_size=int(patch), block=block)

        def process(src: Path, outs: list[Path]) -> TileResult:
            _open_checked(src, lm, int(patch))
            stats = classify_raster(
                scorer,
                src,
                outs[0],
                patch_size=int(patch),
                classes=lm.classes,
                stride=S,
                block=block,
                device=device,
                progress=progress,
                tags={"SATCNN_MODEL": lm.uri},
            )
            return TileResult(
                src, outs, "done", stats.pixels, stats.seconds, class_fractions=stats.class_fractions
            )

    else:
        m = lm.size_multiple
        win = window or -(-max(lm.patch_size or 0, 512) // m) * m
        axis_spans(win, win, margin, m)  # validates window, margin and multiple before any compute
        kind = "prob_uint8" if output == "both" else output
        params.update(window=win, margin=margin, batch_size=batch_size, output=output, threshold=threshold)

        def process(src: Path, outs: list[Path]) -> TileResult:
            _open_checked(src, lm, lm.patch_size)
            stats = predict_raster(
                lm.module,
                src,
                outs[0],
                window=win,
                margin=margin,
                batch_size=batch_size,
                size_multiple=m,
                logits=True,
                output=kind,
                threshold=threshold,
                device=device,
                progress=progress,
                tags={"SATCNN_MODEL": lm.uri},
            )
            seconds = stats.seconds
            if output == "both":
                t = time.perf_counter()
                _mask_from_probability(outs[0], outs[1], threshold)
                seconds += time.perf_counter() - t
            return TileResult(src, outs, "done", stats.pixels, seconds)

    # The tags each output must carry for a rerun to keep it (see predict_raster, classify_raster).
    expected: list[dict[str, str | int | float]]
    if classifier:
        expected = [{"SATCNN_OUTPUT": "class_map", "SATCNN_MODEL": lm.uri, "STRIDE": S}]
    else:
        mask_tags: dict[str, str | int | float] = {
            "SATCNN_OUTPUT": "mask",
            "SATCNN_MODEL": lm.uri,
            "SATCNN_THRESHOLD": threshold,
        }
        prob_tags: dict[str, str | int | float] = {"SATCNN_OUTPUT": kind, "SATCNN_MODEL": lm.uri}
        expected = (
            [prob_tags, mask_tags] if output == "both" else [mask_tags if kind == "mask" else prob_tags]
        )

    mine = all_inputs[index::count]
    report = InferenceReport(lm.uri, lm.path, shard=(index, count))
    first_error: SatcnnError | None = None
    for src in tqdm(mine, unit="tile", desc="infer", disable=not progress):
        outs = _output_paths(src, out_dir, lm.task, output)
        stale = None
        if not overwrite and all(o.exists() for o in outs):
            stale = next((r for o, e in zip(outs, expected, strict=True) if (r := _stale_reason(o, e))), None)
            if stale:
                logger.info("recomputing %s: %s", src, stale)
        if not overwrite and not stale and all(o.exists() for o in outs):
            fractions = _class_fractions_of(outs[0], lm.classes) if classifier else None
            report.results.append(TileResult(src, outs, "skipped", class_fractions=fractions))
            logger.info("skipping %s: %s exists (use overwrite to redo)", src, outs[0])
            continue
        t = time.perf_counter()
        try:
            try:
                report.results.append(process(src, outs))
            except RasterioError as err:
                raise RasterError(f"cannot read or write: {err}", src) from err
        except SatcnnError as err:
            msg = str(err) if str(err).startswith(str(src)) else f"{src}: {err}"
            report.results.append(TileResult(src, [], "failed", seconds=time.perf_counter() - t, error=msg))
            logger.error("%s", msg)
            if not keep_going:
                first_error = (
                    err
                    if err.path is not None and str(err).startswith(str(src))
                    else type(err)(str(err), src)
                )
                break

    suffix = f".rank{index}" if count > 1 else ""
    if classifier:
        report.class_fractions_csv = out_dir / f"class_fractions{suffix}.csv"
        _write_fractions(report.class_fractions_csv, lm.classes, report.results)
    report.seconds = time.perf_counter() - t0
    report.manifest = out_dir / f"manifest{suffix}.json"
    manifest = {
        "model": {
            "uri": lm.uri,
            "path": lm.path,
            "source_run_id": lm.source_run_id,
            "registered": lm.registered or None,
            "meta": lm.meta,
        },
        "inputs": [str(p) for p in mine],
        "outputs": [asdict(r) for r in report.results],
        "parameters": params,
        "shard": {"index": index, "count": count},
        "versions": _versions(),
        "timings": {
            "seconds": report.seconds,
            "tiles": len(report.done),
            "tiles_skipped": len(report.skipped),
            "megapixels": report.megapixels,
            "megapixels_per_s": report.megapixels_per_s,
        },
        "failures": [{"input": str(r.input), "error": r.error} for r in report.failures],
    }
    write_text_atomic(report.manifest, json.dumps(_jsonable(manifest), indent=2) + "\n")
    logger.info(
        "inference: %d tiles done, %d skipped, %d failed; %.2f MP in %.1f s (%.3f MP/s)",
        len(report.done),
        len(report.skipped),
        len(report.failures),
        report.megapixels,
        report.seconds,
        report.megapixels_per_s,
    )
    if track:
        report.mlflow_run_id = _track(report, lm, params, start_ms, tracking_uri)
    if first_error is not None:
        raise first_error
    return report
