"""``satcnn export``: a model as ONNX, a torch.export program (``.pt2``) or TorchScript, with its card.

The model is resolved exactly as ``satcnn infer`` resolves it (checkpoint path, ``runs:/``,
``models:/``, ``pretrained:``; :func:`~satcnn.inference.model_io.load_model`), and what is exported is the
normalising module (:class:`~satcnn.models.normalize.NormalizedModel`): the graph takes raw
digital numbers, float32 ``(N, C, H, W)``, and normalises them with the checkpoint's statistics.

Shapes: the batch is dynamic; so are height and width for segmenters (multiples of the model's
``size_multiple``); a classifier takes its fixed ``patch_size`` squares.

Formats:

* ``onnx``: ``torch.onnx.export(..., dynamo=False)``, the TorchScript-based exporter, with named
  dynamic axes. It needs neither ``onnx`` nor ``onnxscript`` (the dynamo exporter needs both), and
  traced dynamic axes need no shape guards. ``infer`` runs the file with onnxruntime.
* ``pt2``: ``torch.export.export`` with ``Dim`` dynamic shapes (height and width as multiples of
  ``size_multiple``), saved with ``torch.export.save``; ``torch.export.load(f).module()`` runs it.
* ``torchscript``: ``torch.jit.trace``, saved with ``torch.jit.save``.

Each export is checked against the eager model on two inputs of different shapes before it is
published (atomically), and the largest absolute difference is reported and put in the card. The
card (:mod:`satcnn.inference.model_card`) is written beside the file. When the model came from an
MLflow run, both files are logged to that run under ``export/``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from satcnn.errors import ConfigError, ModelError
from satcnn.inference.export_tracking import log_export, run_metrics
from satcnn.inference.model_card import ExportInfo, build_card, card_path, write_card
from satcnn.inference.model_io import LoadedModel, load_model
from satcnn.io.atomic import atomic_output, check_writable
from satcnn.io.stac_outputs import file_checksum
from satcnn.models.checkpoint import read_checkpoint

logger = logging.getLogger(__name__)

__all__ = ["FORMATS", "SUFFIXES", "ExportFormat", "ExportResult", "export_model", "max_abs_difference"]

ExportFormat = Literal["onnx", "pt2", "torchscript"]
FORMATS: tuple[ExportFormat, ...] = ("onnx", "pt2", "torchscript")
SUFFIXES = {"onnx": ".onnx", "pt2": ".pt2", "torchscript": ".torchscript.pt"}
ONNX_OPSET = 17
MAX_SIDE = 16384  # largest dynamic height/width of a pt2 export
MAX_BATCH = 4096
INPUT_NAME = "image"
WARN_DIFF = 1e-3  # float32 exports of satcnn's networks differ by ~1e-6


@dataclass(frozen=True)
class ExportResult:
    """A finished export.

    Attributes:
        path: The exported file.
        card: Its model card (``<path>.json``).
        fmt: The format.
        max_abs_diff: Largest absolute difference between the eager and the exported outputs.
        example_shapes: The input shapes of that check.
        mlflow_run_id: The run the export was logged to (under ``export/``), if any.
    """

    path: Path
    card: Path
    fmt: ExportFormat
    max_abs_diff: float
    example_shapes: list[list[int]]
    mlflow_run_id: str | None = None


def _examples(lm: LoadedModel) -> list[torch.Tensor]:
    """Two inputs of different shapes around the training statistics (raw units), seeded.

    The export traces the first (batch 2: a batch of 1 would be fixed by torch.export's 0/1
    specialisation); the second, a batch of 1 and for segmenters another height and width,
    checks that the exported shapes are dynamic.
    """
    g = torch.Generator().manual_seed(0)
    mean = torch.tensor(lm.record.mean)[:, None, None]
    std = torch.tensor(lm.record.std)[:, None, None]
    c = len(lm.bands)
    if lm.task == "classification":
        p = int(lm.patch_size or lm.module.model.patch_size or 0)
        shapes = [(2, c, p, p), (1, c, p, p)]
    else:
        m = lm.size_multiple
        side = m * max(2, -(-64 // m))
        shapes = [(2, c, side, side), (1, c, side - m if side > 2 * m else side + m, side + m)]
    return [(mean + std * torch.randn(s, generator=g)).clamp_min(0.0) for s in shapes]


def _dynamic_axes(lm: LoadedModel, output: str) -> dict[str, dict[int, str]]:
    axes = {0: "batch"} if lm.task == "classification" else {0: "batch", 2: "height", 3: "width"}
    return {INPUT_NAME: axes, output: dict(axes)}


def _export_onnx(module: torch.nn.Module, x: torch.Tensor, lm: LoadedModel, dst: Path) -> Callable[..., Any]:
    output = "scores" if lm.task == "classification" else "logits"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript-based exporter, by choice
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            module,
            (x,),
            str(dst),
            dynamo=False,
            input_names=[INPUT_NAME],
            output_names=[output],
            dynamic_axes=_dynamic_axes(lm, output),
            opset_version=ONNX_OPSET,
        )
    from satcnn.inference.onnx_model import OnnxNetwork

    return OnnxNetwork(dst, lm.size_multiple, lm.patch_size)


def _export_pt2(module: torch.nn.Module, x: torch.Tensor, lm: LoadedModel, dst: Path) -> Callable[..., Any]:
    from torch.export import Dim

    axes: dict[int, Any] = {0: Dim("batch", min=1, max=MAX_BATCH)}
    if lm.task != "classification":
        m = lm.size_multiple
        for axis, name in ((2, "height"), (3, "width")):
            blocks: Any = Dim(f"{name}_blocks" if m > 1 else name, min=1, max=MAX_SIDE // m)
            axes[axis] = m * blocks if m > 1 else blocks
    program = torch.export.export(module, (x,), dynamic_shapes=({**axes},))
    torch.export.save(program, str(dst))
    return torch.export.load(str(dst)).module()  # type: ignore[no-any-return]


def _export_torchscript(
    module: torch.nn.Module, x: torch.Tensor, lm: LoadedModel, dst: Path
) -> Callable[..., Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)  # torch 2.14 marks TorchScript deprecated
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(module, (x,), check_trace=False)
        torch.jit.save(traced, str(dst))
        return torch.jit.load(str(dst))  # type: ignore[no-any-return]


_EXPORTERS: dict[str, Callable[[torch.nn.Module, torch.Tensor, LoadedModel, Path], Callable[..., Any]]] = {
    "onnx": _export_onnx,
    "pt2": _export_pt2,
    "torchscript": _export_torchscript,
}


def max_abs_difference(
    reference: Callable[[torch.Tensor], torch.Tensor],
    exported: Callable[[torch.Tensor], torch.Tensor],
    inputs: list[torch.Tensor],
) -> float:
    """The largest absolute difference between ``reference`` and ``exported`` over ``inputs``.

    Raises:
        ModelError: an output of the export has another shape than the reference's.
    """
    worst = 0.0
    with torch.inference_mode():
        for x in inputs:
            want, got = reference(x), exported(x)
            if tuple(got.shape) != tuple(want.shape):
                raise ModelError(
                    f"the export returns shape {tuple(got.shape)} for input {tuple(x.shape)}, "
                    f"the model {tuple(want.shape)}"
                )
            worst = max(worst, float((got.float() - want.float()).abs().max()))
    return worst


def default_output(lm: LoadedModel, fmt: ExportFormat) -> Path:
    """Beside a local checkpoint (``best.ckpt`` -> ``best.onnx``); in the working folder for MLflow URIs
    and shipped models (``pretrained:<name>``: ``<name>.onnx``)."""
    stem = lm.path.name.removesuffix(".ckpt")
    name = f"{stem}{SUFFIXES[fmt]}"
    if lm.uri.startswith("pretrained:"):
        return Path.cwd() / name
    if lm.uri.startswith(("runs:/", "models:/")):
        prefix = f"{lm.registered['name']}-v{lm.registered['version']}" if lm.registered else lm.source_run_id
        return Path.cwd() / f"{prefix}-{name}"
    return lm.path.with_name(name)


def _out_path(lm: LoadedModel, fmt: ExportFormat, out: str | Path | None) -> Path:
    if out is None:
        return default_output(lm, fmt)
    path = Path(out).expanduser()
    if path.is_dir() or not path.suffix or str(out).endswith(("/", "\\")):
        return path / default_output(lm, fmt).name
    if fmt == "onnx" and path.suffix != ".onnx":
        raise ConfigError(f"an ONNX export must end in .onnx (infer recognises it by that): {path}")
    return path


def _checkpoint_metrics(lm: LoadedModel) -> dict[str, float]:
    """The best monitored score Lightning's ModelCheckpoint stored in the checkpoint, if any."""
    if lm.path.suffix != ".ckpt":
        return {}
    callbacks = read_checkpoint(lm.path, "cpu").raw.get("callbacks") or {}
    metrics: dict[str, float] = {}
    for state in callbacks.values() if isinstance(callbacks, Mapping) else []:
        if isinstance(state, Mapping) and state.get("monitor") and state.get("best_model_score") is not None:
            metrics[f"best_{state['monitor']}"] = float(state["best_model_score"])
    return metrics


def export_model(
    uri: str | Path,
    fmt: ExportFormat = "onnx",
    out: str | Path | None = None,
    tracking_uri: str | None = None,
    track: bool = True,
) -> ExportResult:
    """Export a satcnn model with its model card (see the module docstring).

    Args:
        uri: Checkpoint path, ``runs:/...`` or ``models:/...``, as for ``satcnn infer``.
        fmt: ``onnx``, ``pt2`` or ``torchscript``.
        out: The file to write, or a folder (existing, or a name without a suffix) for the default
            name (default: :func:`default_output`).
        tracking_uri: MLflow store of the model and of the run to log to.
        track: Log the export and its card to the model's MLflow run, when it has one.

    Raises:
        ConfigError: an unknown format, or an ONNX file name without ``.onnx``.
        ModelError: the model cannot be loaded, is already an export, or cannot be exported.
        OutputError: the output folder cannot be created or written.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    lm = load_model(uri, "cpu", tracking_uri, channels_last=False)
    from satcnn.inference.onnx_model import OnnxNetwork

    if isinstance(lm.module.model, OnnxNetwork):
        raise ModelError("this is already an ONNX export; export from the checkpoint instead", lm.path)
    dst = _out_path(lm, fmt, out)
    check_writable(dst.parent)  # a read-only folder is named as such, before the export's work
    module = lm.module.eval()
    inputs = _examples(lm)
    with torch.inference_mode():
        num_outputs = int(module(inputs[0]).shape[1])
    with atomic_output(dst) as tmp:
        try:
            exported = _EXPORTERS[fmt](module, inputs[0], lm, tmp)
        except Exception as err:  # torch's exporters raise many types; each means "cannot export"
            detail = " ".join(str(err).split())[:400]
            raise ModelError(f"cannot export {lm.model_name} as {fmt}: {detail}", lm.path) from None
        diff = max_abs_difference(module, exported, inputs)
        info = ExportInfo(
            fmt=fmt,
            path=dst,
            size=tmp.stat().st_size,
            checksum=file_checksum(tmp),
            example_shapes=[list(x.shape) for x in inputs],
            max_abs_diff=diff,
            opset=ONNX_OPSET if fmt == "onnx" else None,
        )
    logger.info("exported %s as %s to %s (max abs difference %.3g)", lm.model_name, fmt, dst, diff)
    if diff > WARN_DIFF:
        logger.warning("the %s export differs from the eager model by up to %.3g", fmt, diff)
    metrics = _checkpoint_metrics(lm)
    run_id = lm.source_run_id if track else None
    if run_id:
        metrics.update(run_metrics(run_id, tracking_uri))
    source = {"uri": lm.uri, "run_id": lm.source_run_id, "registered": lm.registered or None}
    card = build_card(
        lm.record,
        lm.module.model,
        info,
        size_multiple=lm.size_multiple,
        num_outputs=num_outputs,
        metrics=metrics,
        source=source,
    )
    card_file = write_card(card, card_path(dst))
    logged = log_export(run_id, [dst, card_file], tracking_uri, fmt) if run_id else None
    return ExportResult(dst, card_file, fmt, diff, info.example_shapes, logged)
