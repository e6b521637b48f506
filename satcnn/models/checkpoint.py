"""The checkpoint contract, in one place: keys, format version, write, read, rebuild, digest.

A satcnn checkpoint is a Lightning checkpoint (a dict saved with ``torch.save``) holding:

* ``checkpoint[CHECKPOINT_KEY]`` (``"satcnn"``): the :class:`CheckpointMeta` record as plain
  Python values, so the file loads with ``torch.load(weights_only=True)``;
* ``checkpoint["state_dict"]``: the network's weights under ``WEIGHTS_PREFIX`` (``"model."``) and
  the normaliser's buffers under ``NORMALIZE_PREFIX`` (``"normalize."``), as the training task
  holds them; a task's other entries (metrics) are ignored;
* optionally ``checkpoint[RUN_KEY]`` (``"satcnn_mlflow"``): the MLflow run that wrote it.

Tasks write the record with :func:`attach` (in ``on_save_checkpoint``); tests and benchmarks
write whole files with :func:`save_checkpoint`. :func:`read_checkpoint` loads a file safely and
upgrades its record in memory, and :func:`build_model` rebuilds the normalising network
(``create_model(name, **kwargs)``, the weights, :class:`~satcnn.models.normalize.Normalize` with
the record's mean and std).

Versions: format 2 adds ``weights_digest`` (:func:`weights_digest`), written at save time and
checked on read, so outputs and registries can name a model by content. Format 1 files (satcnn
0.1.0 before the digest) load unchanged otherwise: the record is upgraded in memory by computing
the digest. A newer format is refused with a message saying to upgrade satcnn.
"""

from __future__ import annotations

import hashlib
import pickle
import zipfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import torch
from torch import nn

from satcnn import __version__
from satcnn.errors import ModelError
from satcnn.io.atomic import atomic_output
from satcnn.models.base import SatcnnModel
from satcnn.models.normalize import Normalize, NormalizedModel, use_channels_last
from satcnn.models.registry import create_model

__all__ = [
    "CHECKPOINT_KEY",
    "FORMAT_VERSION",
    "NORMALIZE_PREFIX",
    "RUN_KEY",
    "WEIGHTS_PREFIX",
    "Checkpoint",
    "CheckpointMeta",
    "ModelSpec",
    "attach",
    "build_model",
    "export_format",
    "parse_checkpoint",
    "read_checkpoint",
    "save_checkpoint",
    "weights_digest",
    "weights_of",
]

CHECKPOINT_KEY = "satcnn"
RUN_KEY = "satcnn_mlflow"
WEIGHTS_PREFIX = "model."
NORMALIZE_PREFIX = "normalize."
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
TASKS = ("classification", "segmentation")
_REQUIRED = ("task", "model", "bands", "mean", "std")

Task = Literal["classification", "segmentation"]


@dataclass(frozen=True)
class ModelSpec:
    """A registered model's name and the keyword arguments that rebuild it."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    def build(self) -> SatcnnModel:
        """``create_model(name, **kwargs)`` (fresh weights)."""
        return create_model(self.name, **self.kwargs)


@dataclass
class CheckpointMeta:
    """The ``satcnn`` record of a checkpoint: everything inference needs besides the weights.

    Attributes:
        task: ``"classification"`` or ``"segmentation"``.
        model: The registered model and its kwargs.
        bands: Band names, in input order.
        mean: Per-band mean, raw units.
        std: Per-band standard deviation, raw units.
        classes: Class names (``["background", "road"]`` for roads).
        patch_size: Training patch (classifier window) size.
        input_dtype: Raster data type trained on (e.g. ``"uint8"``).
        satcnn_version: The satcnn that wrote the checkpoint.
        weights_digest: :func:`weights_digest` of the checkpoint (None until attached).
        format_version: Format of the record (:data:`FORMAT_VERSION` once read).
        band_sources: 1-based source band of each band in the training files (empty: unknown,
            the first ``len(bands)``).
        band_colorinterp: Colour interpretation of each band in the training files (empty: unknown).
        percentiles: Per band, the 1st, 2nd, 98th and 99th percentiles of the training data's
            valid pixels, raw units (``satcnn.io.radiometry.PERCENTILES``; empty: unknown).
        pretrained: Where the starting weights came from when they were torchgeo's: ``source``
            (the weights' name), ``architecture``, ``input_bands`` (the band names the first
            convolution was mapped for), ``bands`` (the weights' band each input band
            was taken from, None where filled), ``mean``/``std`` (the weights' own normalisation
            for the input bands, in the weights' units) and ``normalization`` (``"weights"``:
            ``mean``/``std`` above are the weights'; ``"data"``: the training split's). Empty:
            none or a local file.
    """

    task: Task
    model: ModelSpec
    bands: list[str]
    mean: list[float]
    std: list[float]
    classes: list[str] = field(default_factory=list)
    patch_size: int | None = None
    input_dtype: str | None = None
    satcnn_version: str = __version__
    weights_digest: str | None = None
    format_version: int = FORMAT_VERSION
    band_sources: list[int] = field(default_factory=list)
    band_colorinterp: list[str] = field(default_factory=list)
    percentiles: list[list[float]] = field(default_factory=list)
    pretrained: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values (safe for ``torch.load(weights_only=True)``, JSON and YAML)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], path: str | Path | None = None) -> CheckpointMeta:
        """Parse and check a record of any readable format (format 1 keeps ``weights_digest`` None).

        Raises:
            ModelError: a newer or unknown format, missing entries, or inconsistent values.
        """
        if not isinstance(data, Mapping):
            raise ModelError(f"the satcnn block is a {type(data).__name__}, not a dict", path)
        version = data.get("format_version", 1)
        if not isinstance(version, int) or version < 1:
            raise ModelError(f"the satcnn block has an invalid format_version {version!r}", path)
        if version > FORMAT_VERSION:
            raise ModelError(
                f"checkpoint format {version} was written by a newer satcnn "
                f"({data.get('satcnn_version', 'unknown')}); this satcnn {__version__} reads formats "
                f"{READABLE_VERSIONS[0]} to {FORMAT_VERSION}: upgrade satcnn (pip install -U satcnn)",
                path,
            )
        missing = [k for k in _REQUIRED if k not in data]
        if missing:
            raise ModelError(f"the satcnn block lacks {', '.join(missing)}", path)
        spec = data["model"]
        if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
            raise ModelError(f"the satcnn block's model is not {{'name', 'kwargs'}}: {spec!r}", path)
        if data["task"] not in TASKS:
            raise ModelError(f"unknown task {data['task']!r}; expected one of {', '.join(TASKS)}", path)
        bands, mean, std = list(data["bands"]), list(data["mean"]), list(data["std"])
        if len(mean) != len(bands) or len(std) != len(bands):
            raise ModelError(f"mean/std have {len(mean)}/{len(std)} values for {len(bands)} bands", path)
        patch = data.get("patch_size")
        sources = [int(i) for i in data.get("band_sources") or []]
        interps = [str(c) for c in data.get("band_colorinterp") or []]
        pcts = [[float(v) for v in row] for row in data.get("percentiles") or []]
        optional: dict[str, list[Any]] = {
            "band_sources": sources,
            "band_colorinterp": interps,
            "percentiles": pcts,
        }
        for label, values in optional.items():
            if values and len(values) != len(bands):
                raise ModelError(f"{label} has {len(values)} entries for {len(bands)} bands", path)
        if any(len(row) != 4 for row in pcts):
            raise ModelError("percentiles must hold 4 values (p1, p2, p98, p99) per band", path)
        return cls(
            task=cast(Task, data["task"]),
            model=ModelSpec(spec["name"], dict(spec.get("kwargs") or {})),
            bands=[str(b) for b in bands],
            mean=[float(v) for v in mean],
            std=[float(v) for v in std],
            classes=[str(c) for c in data.get("classes") or []],
            patch_size=int(patch) if patch else None,
            input_dtype=str(data["input_dtype"]) if data.get("input_dtype") else None,
            satcnn_version=str(data.get("satcnn_version", "unknown")),
            weights_digest=data.get("weights_digest") if version >= 2 else None,
            format_version=version,
            band_sources=sources,
            band_colorinterp=interps,
            percentiles=pcts,
            pretrained=dict(data.get("pretrained") or {}),
        )


def weights_of(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The network's weights in a checkpoint's state dict, without the ``model.`` prefix."""
    n = len(WEIGHTS_PREFIX)
    return {k[n:]: v for k, v in state_dict.items() if k.startswith(WEIGHTS_PREFIX)}


def weights_digest(state_dict: Mapping[str, torch.Tensor]) -> str:
    """``"sha256:<hex>"`` of the network's weights: names a model by content.

    Hashes every ``model.`` tensor of ``state_dict`` in sorted key order, each as its key, dtype,
    shape and bytes. Any retraining changes it, even when the file keeps its path; the
    normalisation statistics are fixed at fit time, so they change only with the weights.
    """
    h = hashlib.sha256()
    for key, value in sorted(weights_of(state_dict).items()):
        t = value.detach().to("cpu").contiguous()
        h.update(f"\n{key}:{t.dtype}:{tuple(t.shape)}\n".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().data)
    return f"sha256:{h.hexdigest()}"


def attach(checkpoint: dict[str, Any], meta: CheckpointMeta) -> None:
    """Write ``meta`` into a checkpoint dict whose ``state_dict`` is filled, with its digest."""
    meta.weights_digest = weights_digest(checkpoint.get("state_dict") or {})
    meta.format_version = FORMAT_VERSION
    checkpoint[CHECKPOINT_KEY] = meta.to_dict()


def save_checkpoint(
    path: str | Path, model: nn.Module, meta: CheckpointMeta, extra: Mapping[str, Any] | None = None
) -> Path:
    """Save ``model`` (with ``meta``'s normaliser) as a satcnn checkpoint file, atomically.

    For tools and tests that have a bare network rather than a trained task.
    """
    state = {f"{WEIGHTS_PREFIX}{k}": v for k, v in model.state_dict().items()}
    norm = Normalize.from_stats(meta.mean, meta.std)
    state.update({f"{NORMALIZE_PREFIX}{k}": v for k, v in norm.state_dict().items()})
    checkpoint: dict[str, Any] = {**(extra or {}), "state_dict": state}
    attach(checkpoint, meta)
    with atomic_output(path) as tmp:
        torch.save(checkpoint, tmp)
    return Path(path)


@dataclass
class Checkpoint:
    """A checkpoint as read: its record (upgraded to the current format) and the whole file.

    Attributes:
        meta: The ``satcnn`` record, with ``weights_digest`` set.
        raw: The file's dict (``state_dict``, ``RUN_KEY``, Lightning's entries).
        path: Where it was read from.
    """

    meta: CheckpointMeta
    raw: dict[str, Any]
    path: Path | None = None

    @property
    def state_dict(self) -> dict[str, torch.Tensor]:
        """The Lightning state dict (empty if the file has none)."""
        return dict(self.raw.get("state_dict") or {})

    @property
    def run_info(self) -> dict[str, Any]:
        """The MLflow run that wrote the checkpoint (``run_id``, ...), or ``{}``."""
        return dict(self.raw.get(RUN_KEY) or {})


def parse_checkpoint(raw: Mapping[str, Any], path: str | Path | None = None) -> Checkpoint:
    """Check a loaded checkpoint dict and upgrade its record to the current format (in memory).

    Raises:
        ModelError: no ``satcnn`` block, an unreadable format, or weights that differ from the
            recorded digest.
    """
    if not isinstance(raw, Mapping) or CHECKPOINT_KEY not in raw:
        raise ModelError(
            f"not a satcnn checkpoint (no {CHECKPOINT_KEY!r} block); use a checkpoint written by "
            "`satcnn fit` (see docs/architecture.md, checkpoint contract)",
            path,
        )
    meta = CheckpointMeta.from_dict(raw[CHECKPOINT_KEY], path)
    digest = weights_digest(raw.get("state_dict") or {})
    if meta.weights_digest is not None and meta.weights_digest != digest:
        raise ModelError(
            f"the weights differ from the digest recorded when satcnn wrote the file ({meta.weights_digest}, "
            f"now {digest}): the checkpoint was modified or damaged; use the original, or re-save it "
            "with satcnn.models.checkpoint.save_checkpoint",
            path,
        )
    meta.weights_digest, meta.format_version = digest, FORMAT_VERSION
    return Checkpoint(meta, dict(raw), Path(path) if path is not None else None)


def read_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
    """Load a satcnn checkpoint safely (``weights_only=True``: tensors and plain values only).

    Raises:
        ModelError: unreadable, holding pickled objects, not a satcnn checkpoint, of a newer
            format, or with weights that differ from its recorded digest.
    """
    path = Path(path)
    _check_file(path)
    try:
        raw = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as err:
        globals_ = [ln.strip() for ln in str(err).splitlines() if "Unsupported global" in ln]
        if not globals_:
            raise ModelError("not a readable PyTorch checkpoint (it does not unpickle)", path) from None
        detail = globals_[0].split("Unsupported global: ")[-1].split(" was not")[0]
        raise ModelError(
            "refused to load: the checkpoint holds objects other than tensors and plain values "
            f"(Unsupported global {detail}); only load checkpoints written by satcnn",
            path,
        ) from None
    except Exception as err:  # torch.load fails in many ways on foreign bytes (IndexError, KeyError, ...)
        detail = " ".join(str(err).split())[:200] or type(err).__name__
        export = export_format(path)
        if export:
            raise ModelError(
                f"is a {export} export, not a checkpoint; give the satcnn checkpoint (.ckpt, runs:/ or "
                "models:/ URI) it was exported from (`satcnn infer` also runs exports beside their card)",
                path,
            ) from None
        if _is_zip(path):
            raise ModelError(
                f"is truncated or damaged: not a complete checkpoint archive ({detail}); copy it again "
                "or use another checkpoint",
                path,
            ) from None
        raise ModelError(
            f"not a readable PyTorch checkpoint ({detail}); give a .ckpt written by `satcnn fit`", path
        ) from None
    return parse_checkpoint(raw, path)


def _check_file(path: Path) -> None:
    """Refuse what is plainly not a checkpoint before ``torch.load`` sees it: a folder, empty or text."""
    if path.is_dir():
        raise ModelError("is a folder, not a checkpoint file; give the .ckpt file inside it", path)
    try:
        with path.open("rb") as f:
            head = f.read(512)
    except OSError as err:
        raise ModelError(f"cannot read the checkpoint: {err.strerror or err}", path) from None
    if not head:
        raise ModelError("is empty (0 bytes), not a checkpoint; the copy or the save was cut short", path)
    if head[:2] != b"PK" and _is_text(head):
        raise ModelError(
            "is a text file, not a PyTorch checkpoint; give a .ckpt written by `satcnn fit`", path
        )


def export_format(path: Path) -> str | None:
    """``torch.export (.pt2)`` or ``TorchScript`` when ``path`` is such an archive, else None."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return None
    if any(n.endswith("/archive_format") for n in names) and any("/models/" in n for n in names):
        return "torch.export (.pt2)"
    if any(n.endswith("/constants.pkl") for n in names) and any("/code/" in n for n in names):
        return "TorchScript"
    return None


def _is_zip(path: Path) -> bool:
    """Whether ``path`` starts like a zip archive (the format ``torch.save`` writes)."""
    with path.open("rb") as f:
        return f.read(4) == b"PK\x03\x04"


def _is_text(head: bytes) -> bool:
    """Whether ``head`` looks like text (UTF-8 without control bytes other than whitespace)."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as err:
        if err.start < len(head) - 3:  # not just a character cut at the end of the sample
            return False
        text = head[: err.start].decode("utf-8")
    return all(c.isprintable() or c in "\t\n\r" for c in text)


def build_model(
    ckpt: Checkpoint, channels_last: bool = False
) -> tuple[NormalizedModel[SatcnnModel], CheckpointMeta]:
    """Rebuild the normalising network of a checkpoint, in eval mode on the CPU.

    Raises:
        ModelError: the model cannot be rebuilt, or the weights do not fit it.
    """
    meta, path = ckpt.meta, ckpt.path
    try:
        model = meta.model.build()
    except ModelError as err:
        raise ModelError(f"cannot rebuild the model: {err}", path) from None
    weights = weights_of(ckpt.state_dict)
    if not weights:
        raise ModelError(f"the checkpoint has no {WEIGHTS_PREFIX!r} weights in its state_dict", path)
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as err:
        detail = " ".join(str(err).split())[:400]
        raise ModelError(
            f"weights do not match model {meta.model.name!r} {meta.model.kwargs}: {detail}", path
        ) from None
    norm = Normalize.from_stats(meta.mean, meta.std)
    use_channels_last(model, norm, channels_last)
    return NormalizedModel(model, norm).eval(), meta
