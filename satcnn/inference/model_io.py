"""Load a satcnn model for inference from a checkpoint file or an MLflow URI.

Accepted URIs:

* a checkpoint file path (``runs/<experiment>/<run_id>/checkpoints/best-....ckpt`` or any ``.ckpt``);
* ``runs:/<run_id>/<artifact path>``: an artifact of an MLflow run. A ``.ckpt`` artifact is
  downloaded as is; an omitted path means ``checkpoints/best.ckpt`` (logged by ``fit``); a folder
  is searched for a checkpoint (see below);
* ``models:/<name>/<version>`` or ``models:/<name>@<alias>``: a registered model version. Its
  artifacts are downloaded and searched for a checkpoint; if they hold none, the version's source
  run's ``checkpoints/best.ckpt`` is used. So registering a run's ``checkpoints`` folder (or a
  single ``.ckpt``) as the version's source is enough;
* ``pretrained:<name>``: a model shipped with satcnn or in ``$SATCNN_PRETRAINED_DIR``
  (:mod:`satcnn.models.pretrained`, ``satcnn models list``), its file checked against its card.

An ONNX export (``*.onnx``, written by ``satcnn export`` with its model card ``*.onnx.json``) is
run through onnxruntime (:mod:`satcnn.inference.onnx_model`), given as a path or a ``runs:/`` URI
of the export (the card is downloaded beside it). A ``torch.export`` program (``*.pt2``) or a
TorchScript export runs in torch (:mod:`satcnn.inference.torch_export_model`), also beside its card.

A folder is searched for ``best.ckpt``, then ``checkpoints/best.ckpt``, then ``last.ckpt``, then
the only ``*.ckpt`` below it.

Reading and rebuilding are the checkpoint contract's (:mod:`satcnn.models.checkpoint`): the file is
read with ``torch.load(..., weights_only=True)`` only (pickled objects are refused, never
executed), and the model comes back as a :class:`~satcnn.models.normalize.NormalizedModel` that
takes raw digital numbers (float32) and normalises them as the training task did.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from satcnn.errors import ModelError
from satcnn.models.base import SatcnnModel
from satcnn.models.checkpoint import CheckpointMeta, build_model, export_format, read_checkpoint
from satcnn.models.normalize import ChannelsLast, NormalizedModel, inference_channels_last
from satcnn.models.pretrained import PREFIX, find_pretrained, is_pretrained_ref, resolve_pretrained

logger = logging.getLogger(__name__)

__all__ = [
    "LoadedModel",
    "NormalizedModel",
    "SlidingPatchClassifier",
    "StridedFCN",
    "load_model",
    "resolve_model_path",
    "source_run_from_path",
]

DEFAULT_RUN_ARTIFACT = "checkpoints/best.ckpt"
ONNX_SUFFIX = ".onnx"
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


class SlidingPatchClassifier(nn.Module):
    """Turn a patch classifier ``(N, C, P, P) -> (N, K)`` into a dense scorer.

    On ``(N, C, H, W)`` it returns ``(N, K, (H - P) // S + 1, (W - P) // S + 1)``: the scores of
    every ``P x P`` window at stride ``S``, classified ``chunk`` windows at a time. Output rows are
    unfolded in strips of about ``chunk`` windows (at least one row), so memory does not grow with
    the block (a whole 2048 block at stride 2 would unfold to about 13 GB). Used for classifiers
    without ``as_fully_convolutional``; slower than a true FCN.
    """

    def __init__(self, model: nn.Module, patch_size: int, stride: int, chunk: int = 1024) -> None:
        super().__init__()
        self.model = model
        self.patch_size = patch_size
        self.stride = stride
        self.chunk = chunk

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        P, S = self.patch_size, self.stride
        oh, ow = (h - P) // S + 1, (w - P) // S + 1
        rows = max(1, self.chunk // max(1, n * ow))
        strips = []
        for r0 in range(0, oh, rows):
            r1 = min(oh, r0 + rows)
            band = x[:, :, r0 * S : (r1 - 1) * S + P]
            cols = torch.nn.functional.unfold(band, P, stride=S)  # (N, C*P*P, (r1 - r0) * ow)
            patches = cols.transpose(1, 2).reshape(-1, c, P, P)
            scores = torch.cat(
                [self.model(patches[i : i + self.chunk]) for i in range(0, len(patches), self.chunk)]
            )
            strips.append(scores.view(n, r1 - r0, ow, -1))
        return torch.cat(strips, dim=1).permute(0, 3, 1, 2)


class StridedFCN(nn.Module):
    """Keep every ``step``-th output of a fully convolutional classifier along both axes."""

    def __init__(self, model: nn.Module, step: int) -> None:
        super().__init__()
        self.model = model
        self.step = step

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        return out if self.step == 1 else out[:, :, :: self.step, :: self.step]


@dataclass
class LoadedModel:
    """A model ready for inference and what it was trained on.

    Attributes:
        module: Takes raw digital numbers ``(N, C, H, W)`` float32 (normalises inside), in eval mode.
        record: The checkpoint's record (:class:`~satcnn.models.checkpoint.CheckpointMeta`).
        uri: What the user asked for.
        path: The local checkpoint file that was read.
        source_run_id: The MLflow run that produced the checkpoint, when known.
        registered: The registered model version (``name``, ``version``, ``source``), for ``models:/``.
        resolution_m: The ground resolution the model was trained at, in metres, when its card
            records one (a shipped model's ``resolution_m``); inputs far from it are warned of.
    """

    module: NormalizedModel[SatcnnModel]
    record: CheckpointMeta
    uri: str
    path: Path
    source_run_id: str | None = None
    registered: dict[str, str] = field(default_factory=dict)
    resolution_m: float | None = None

    @property
    def meta(self) -> dict[str, Any]:
        """The record as plain values (task, model, bands, classes, patch_size, mean, std, ...)."""
        return self.record.to_dict()

    @property
    def task(self) -> str:
        """``"classification"`` or ``"segmentation"``."""
        return self.record.task

    @property
    def model_name(self) -> str:
        """The registered model name."""
        return self.record.model.name

    @property
    def bands(self) -> list[str]:
        """Band names, in input order."""
        return list(self.record.bands)

    @property
    def classes(self) -> list[str]:
        """Class names."""
        return list(self.record.classes)

    @property
    def patch_size(self) -> int | None:
        """Training patch (classifier window) size, if recorded (else the model's own, if any)."""
        return self.record.patch_size

    @property
    def input_dtype(self) -> str | None:
        """Raster data type the model was trained on, if recorded."""
        return self.record.input_dtype

    @property
    def size_multiple(self) -> int:
        """Input sides must be a multiple of this (1 for most classifiers)."""
        return self.module.model.size_multiple

    @property
    def weights_digest(self) -> str:
        """``sha256:...`` of the weights and normalisation: names the model by content."""
        assert self.record.weights_digest is not None  # set by read_checkpoint
        return self.record.weights_digest


def source_run_from_path(path: str | Path) -> str | None:
    """The MLflow run id of a checkpoint stored as ``.../<run_id>/checkpoints/<file>.ckpt``, else None."""
    p = Path(path)
    if p.parent.name == "checkpoints" and _RUN_ID.match(p.parent.parent.name):
        return p.parent.parent.name
    return None


def _find_checkpoint(folder: Path, what: str) -> Path:
    for rel in ("best.ckpt", "checkpoints/best.ckpt", "last.ckpt", "checkpoints/last.ckpt"):
        if (folder / rel).is_file():
            return folder / rel
    found = sorted(folder.rglob("*.ckpt"))
    if len(found) == 1:
        return found[0]
    detail = f"several: {', '.join(str(f.relative_to(folder)) for f in found)}" if found else "none"
    raise ModelError(
        f"{what} does not hold exactly one checkpoint (*.ckpt) and no best.ckpt ({detail}); "
        "name the checkpoint file in the URI",
        folder,
    )


def _download(artifact_uri: str, tracking_uri: str | None, dst_path: Path | None = None) -> Path:
    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException

    dst = str(dst_path) if dst_path is not None else None
    try:
        return Path(download_artifacts(artifact_uri=artifact_uri, tracking_uri=tracking_uri, dst_path=dst))
    except (MlflowException, OSError) as err:
        raise ModelError(f"cannot download {artifact_uri} from MLflow ({tracking_uri}): {err}") from None


def _resolve_runs_uri(uri: str, tracking_uri: str) -> tuple[Path, str]:
    m = re.fullmatch(r"runs:/([^/]+)/?(.*)", uri)
    if not m:
        raise ModelError(f"model URI {uri!r} is not of the form runs:/<run_id>/<artifact path>")
    run_id, artifact = m.group(1), m.group(2).strip("/") or DEFAULT_RUN_ARTIFACT
    local = _download(f"runs:/{run_id}/{artifact}", tracking_uri)
    if local.is_file() and local.suffix == ONNX_SUFFIX:  # its model card goes beside it
        _download(f"runs:/{run_id}/{artifact}.json", tracking_uri, local.parent)
    return (_find_checkpoint(local, uri) if local.is_dir() else local), run_id


def _resolve_models_uri(uri: str, tracking_uri: str) -> tuple[Path, str | None, dict[str, str]]:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    m = re.fullmatch(r"models:/([^/@]+)(?:/([^/]+)|@([^/]+))/?", uri)
    if not m:
        raise ModelError(
            f"model URI {uri!r} is not of the form models:/<name>/<version> or models:/<name>@<alias>"
        )
    name, version, alias = m.groups()
    # The registry is the store we were given (or MLFLOW_REGISTRY_URI), never a URI that an earlier
    # fit in this process left in MLflow's globals.
    client = MlflowClient(tracking_uri, registry_uri=os.environ.get("MLFLOW_REGISTRY_URI") or tracking_uri)
    try:
        mv = (
            client.get_model_version_by_alias(name, alias)
            if alias
            else client.get_model_version(name, version)
        )
    except MlflowException as err:
        raise ModelError(f"registered model {uri} not found in {tracking_uri}: {err.message}") from None
    registered = {"name": name, "version": str(mv.version), "source": str(mv.source)}
    try:
        source = client.get_model_version_download_uri(name, mv.version)
    except MlflowException as err:
        raise ModelError(f"cannot resolve the files of {uri} in {tracking_uri}: {err.message}") from None
    local = _download(source, tracking_uri)
    if local.is_file():
        return local, mv.run_id, registered
    try:
        return _find_checkpoint(local, uri), mv.run_id, registered
    except ModelError:
        if not mv.run_id:
            raise
        logger.info("%s holds no checkpoint; using its source run's %s", uri, DEFAULT_RUN_ARTIFACT)
        path, run_id = _resolve_runs_uri(f"runs:/{mv.run_id}/{DEFAULT_RUN_ARTIFACT}", tracking_uri)
        return path, run_id, registered


def _device(device: str | torch.device, path: Path) -> torch.device:
    try:
        return torch.device(device)
    except RuntimeError as err:
        raise ModelError(f"cannot move the model to device {str(device)!r}: {err}", path) from None


def load_model(
    uri: str | Path,
    device: str | torch.device = "cpu",
    tracking_uri: str | None = None,
    channels_last: ChannelsLast = "auto",
) -> LoadedModel:
    """Load a satcnn model from a checkpoint path or an MLflow ``runs:/`` or ``models:/`` URI.

    Args:
        uri: Checkpoint path, ``runs:/<run_id>[/<artifact path>]``, ``models:/<name>/<version>``,
            ``models:/<name>@<alias>`` or ``pretrained:<name>``; or an ONNX export (``.onnx`` beside
            its model card).
        device: Where to put the model.
        tracking_uri: MLflow store for ``runs:/`` and ``models:/`` URIs (default
            ``satcnn.tracking.store.default_tracking_uri()``).
        channels_last: Run the network channels-last; ``auto``: on CUDA, and on CPU for
            segmentation models (:func:`satcnn.models.normalize.inference_channels_last`).

    Returns:
        The normalising model in eval mode, its metadata and provenance.

    Raises:
        ModelError: The checkpoint file does not exist, the URI cannot be resolved, the file is
            not a satcnn checkpoint, holds pickled objects, names an unknown model, or its
            weights do not fit the model.
    """
    path, source_run, registered = resolve_model_path(uri, tracking_uri)
    if path.suffix == ONNX_SUFFIX:
        from satcnn.inference.onnx_model import load_onnx_model

        return load_onnx_model(path, str(uri), _device(device, path), source_run, registered)
    export = export_format(path) if path.is_file() else None
    if export:  # a .pt2 or TorchScript archive, whatever its name
        from satcnn.inference.torch_export_model import load_torch_export

        return load_torch_export(path, export, str(uri), _device(device, path), source_run, registered)
    # Read on the CPU whatever the target: a CUDA-saved checkpoint loads on a CPU-only machine, and a
    # bad device is reported as such below rather than as an unreadable checkpoint.
    ckpt = read_checkpoint(path, "cpu")
    target = _device(device, path)
    module, meta = build_model(ckpt, inference_channels_last(channels_last, target, ckpt.meta.task))
    if meta.patch_size is None:
        meta.patch_size = module.model.patch_size  # a classifier's own patch, when not recorded
    try:
        module.to(target)
    except (RuntimeError, AssertionError) as err:
        raise ModelError(f"cannot move the model to device {str(device)!r}: {err}", path) from None
    logger.info("loaded %s model %s (%s) from %s", meta.task, meta.model.name, meta.weights_digest, path)
    lm = LoadedModel(module, meta, str(uri), path.resolve(), source_run, registered)
    if is_pretrained_ref(str(uri)):  # its card records the resolution it was trained at, or null
        res = find_pretrained(str(uri).removeprefix(PREFIX)).card.get("resolution_m")
        if isinstance(res, int | float) and not isinstance(res, bool) and res > 0:
            lm.resolution_m = float(res)
    return lm


def resolve_model_path(
    uri: str | Path, tracking_uri: str | None = None
) -> tuple[Path, str | None, dict[str, str]]:
    """The local checkpoint behind a model URI, the MLflow run that made it, and registry details.

    Accepts what :func:`load_model` accepts; MLflow artifacts are downloaded to a temporary folder.

    Raises:
        ModelError: the file is missing, the URI cannot be resolved to exactly one checkpoint, or
            names an unknown (or damaged) pretrained model.
    """
    text = str(uri)
    source_run: str | None = None
    registered: dict[str, str] = {}
    if is_pretrained_ref(text):
        path = resolve_pretrained(text).checkpoint
    elif text.startswith(("runs:/", "models:/")):
        from satcnn.tracking.store import default_tracking_uri

        store = tracking_uri or default_tracking_uri()
        if text.startswith("runs:/"):
            path, source_run = _resolve_runs_uri(text, store)
        else:
            path, source_run, registered = _resolve_models_uri(text, store)
    else:
        path = Path(text).expanduser()
        if not path.exists():
            raise ModelError("model checkpoint not found; give a .ckpt path or an MLflow URI", path)
        if path.is_dir():
            path = _find_checkpoint(path, "model folder")
        source_run = source_run_from_path(path)
    return path, source_run, registered
