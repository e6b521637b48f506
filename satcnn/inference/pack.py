"""``satcnn models pack``: a trained checkpoint as a shipped model (``pretrained:<name>``).

Packing reads a satcnn checkpoint (a path, ``runs:/`` or ``models:/`` URI, as ``infer`` takes
it) and writes two files into a model folder (:mod:`satcnn.models.pretrained`):

* ``<name>.ckpt``: the ``satcnn`` record (task, model and its kwargs, bands, band statistics,
  classes, patch size, input type) and the weights, nothing else: no optimiser state, loops or
  callbacks. With ``half``, the network's floating-point weights are stored as float16; loading
  copies them into the float32 network (``load_state_dict``), so inference runs in float32. The
  normaliser's statistics stay float32.
* ``<name>.json``: the model card (:data:`~satcnn.models.pretrained.CARD_FIELDS`), built from the
  record, the scores (an ``evaluate`` ``metrics.json``, a flat JSON of numbers, or else the
  ``test_*`` metrics of the checkpoint's MLflow run), the recipe
  (a pipeline file: its fit seed and epochs are read from it) and a card file of the entries
  only a person knows (description, training data, resolution, the data's licence). The card
  names no path of the packing machine (:func:`_portable`): local paths are relative to the
  working folder, or ``.../`` and their last three parts; the MLflow run id is kept.

Before anything is written, the packed model's outputs (probabilities) are compared with the
checkpoint's on a seeded input of raw digital numbers around the band means: a difference over
:data:`HALF_TOLERANCE` (float16) or :data:`FULL_TOLERANCE` refuses the pack. So does a weight file
over ``max_mb`` megabytes (10 by default, what a repository can carry). The check input is noise
around the band means, so it bounds typical differences only: on a real held-out Massachusetts
tile, float16 weights of the road model moved the probability by up to 0.039 where it is steep
(mean 5e-5; the mask at 0.5 changed at 4e-5 of the pixels). Prefer float32 where it fits.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import torch
import yaml

from satcnn import __version__
from satcnn.errors import ConfigError, ModelError, output_error, require_file
from satcnn.inference.model_card import ARCHITECTURES
from satcnn.inference.model_io import resolve_model_path
from satcnn.io.atomic import atomic_output, check_writable, write_text_atomic
from satcnn.models.checkpoint import (
    NORMALIZE_PREFIX,
    WEIGHTS_PREFIX,
    Checkpoint,
    attach,
    build_model,
    parse_checkpoint,
    read_checkpoint,
)
from satcnn.models.pretrained import CARD_FIELDS, NAME_PATTERN, package_dir

__all__ = ["FULL_TOLERANCE", "HALF_TOLERANCE", "MAX_MB", "PackResult", "pack_model", "read_scores"]

MAX_MB = 10.0
HALF_TOLERANCE = 1e-2  # largest probability difference of float16 weights (typically ~1e-3)
FULL_TOLERANCE = 1e-5
CHECK_SIDE = 64  # side of the check input of a segmenter (rounded up to its size multiple)
PERSON_FIELDS = ("description", "resolution_m", "threshold", "data_licence", "training")


@dataclass(frozen=True)
class PackResult:
    """A packed model.

    Attributes:
        checkpoint: The weight file written.
        card: The card written.
        size_bytes: Size of the weight file.
        max_abs_diff: Largest probability difference to the source checkpoint on the check input.
        card_data: The card's entries.
    """

    checkpoint: Path
    card: Path
    size_bytes: int
    max_abs_diff: float
    card_data: dict[str, Any]


def _read_mapping(path: Path, what: str) -> dict[str, Any]:
    require_file(path, what)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))  # JSON is YAML too
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: cannot read the {what}: {err}") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: the {what} is not a mapping of keys to values")
    return dict(data)


def read_scores(path: Path) -> tuple[dict[str, float], dict[str, Any]]:
    """The overall scores in ``path`` and the settings they were measured with.

    ``path`` is an ``evaluate`` ``metrics.json`` (its ``metrics`` and ``settings``) or a flat
    mapping of names to numbers.

    Raises:
        ConfigError: unreadable, or holding no number.
    """
    data = _read_mapping(path, "scores file")
    metrics = data.get("metrics", data)
    settings = data.get("settings") if isinstance(data.get("settings"), Mapping) else {}
    scores = {
        str(k): float(v)
        for k, v in (metrics.items() if isinstance(metrics, Mapping) else [])
        if isinstance(v, int | float) and not isinstance(v, bool)
    }
    if not scores:
        raise ConfigError(f"{path}: the scores file holds no numeric scores")
    return scores, dict(settings or {})


def _portable(source: str | Path) -> str:
    """A source as a card records it, with nothing of the packing machine's file system: a local path
    (or ``file:`` URI) relative to the working folder when below it, else ``.../`` and its last three
    parts; a URI (``runs:/``, ``models:/``, ``s3://``...) as it is."""
    text = str(source)
    parsed = urlsplit(text)
    if parsed.scheme == "file":
        text = unquote(parsed.path)
    elif parsed.scheme and len(parsed.scheme) > 1:  # runs:/, models:/, s3://; not a drive letter
        return text
    path = Path(text)
    if not path.is_absolute():
        return path.as_posix()
    try:
        return path.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return "/".join(["...", *path.parts[-3:]])


def _recipe_facts(recipe: Path) -> dict[str, Any]:
    """The seed, epochs and fit config of a pipeline file (what is there)."""
    spec = _read_mapping(recipe, "recipe (pipeline file)")
    fit = ((spec.get("stages") or {}).get("fit") or {}) if isinstance(spec.get("stages"), Mapping) else {}
    args = fit.get("args") or {}
    facts: dict[str, Any] = {"recipe": _portable(recipe), "pipeline": spec.get("name")}
    seed = args.get("seed_everything")
    config = fit.get("config")
    if seed is None and config and Path(config).is_file():
        seed = (yaml.safe_load(Path(config).read_text(encoding="utf-8")) or {}).get("seed_everything")
    facts.update(
        {"seed": seed, "epochs": fit.get("epochs"), "fit_config": _portable(config) if config else None}
    )
    return {k: v for k, v in facts.items() if v is not None}


def _packed_state(ckpt: Checkpoint, half: bool) -> dict[str, torch.Tensor]:
    state = {}
    for key, value in ckpt.state_dict.items():
        if key.startswith(NORMALIZE_PREFIX):
            state[key] = value.detach().to("cpu", torch.float32).clone()
        elif key.startswith(WEIGHTS_PREFIX):
            t = value.detach().to("cpu").clone()
            if half and t.is_floating_point():
                t = t.to(torch.float16)
                if not torch.isfinite(t).all():
                    raise ModelError(f"weight {key} does not fit float16 (over 65504); pack without --half")
            state[key] = t
    return state


def _check_input(ckpt: Checkpoint, multiple: int) -> torch.Tensor:
    meta = ckpt.meta
    side = meta.patch_size if meta.task == "classification" and meta.patch_size else CHECK_SIDE
    side = -(-side // multiple) * multiple
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(2, len(meta.bands), side, side, generator=gen)
    mean = torch.tensor(meta.mean).view(1, -1, 1, 1)
    std = torch.tensor(meta.std).view(1, -1, 1, 1)
    return mean + noise * std


def _probabilities(model: torch.nn.Module, x: torch.Tensor, task: str) -> torch.Tensor:
    with torch.inference_mode():
        out = model(x).float()
    return torch.sigmoid(out) if task == "segmentation" and out.shape[1] == 1 else out.softmax(1)


def _card(
    packed: Checkpoint,
    name: str,
    fields: Mapping[str, Any],
    scores: dict[str, float],
    settings: Mapping[str, Any],
    training: dict[str, Any],
    weights: dict[str, Any],
) -> dict[str, Any]:
    meta = packed.meta
    threshold = fields.get("threshold", settings.get("threshold"))
    if threshold is None and meta.task == "segmentation":
        threshold = 0.5
    card: dict[str, Any] = {
        "name": name,
        "description": fields.get("description", ""),
        "task": meta.task,
        "architecture": ARCHITECTURES.get(meta.model.name, meta.model.name),
        "model": {"name": meta.model.name, "kwargs": meta.model.kwargs},
        "bands": meta.bands,
        "classes": meta.classes,
        "patch_size": meta.patch_size,
        "input_dtype": meta.input_dtype,
        "resolution_m": fields.get("resolution_m"),
        "threshold": threshold,
        "normalization": {"mean": meta.mean, "std": meta.std},
        "training": {**training, **dict(fields.get("training") or {})},
        "scores": {"values": scores, "settings": dict(settings)} if scores else {},
        "data_licence": fields.get("data_licence"),
        "satcnn_version": __version__,
        "weights": weights,
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    assert tuple(card) == CARD_FIELDS
    return card


def pack_model(
    model: str | Path,
    name: str,
    out_dir: str | Path | None = None,
    *,
    card_file: str | Path | None = None,
    scores_file: str | Path | None = None,
    recipe: str | Path | None = None,
    half: bool = False,
    max_mb: float = MAX_MB,
    tracking_uri: str | None = None,
) -> PackResult:
    """Write ``<name>.ckpt`` and ``<name>.json`` for the checkpoint ``model`` into ``out_dir``.

    Args:
        model: Checkpoint path, ``runs:/...`` or ``models:/...`` URI.
        name: The shipped name (lower case, digits, ``.``, ``_``, ``-``).
        out_dir: Model folder (default: the package's ``satcnn/pretrained/``).
        card_file: YAML or JSON with the card's entries a person gives (description,
            resolution_m, threshold, data_licence, training: {data, command, ...}).
        scores_file: An ``evaluate`` ``metrics.json`` (or a flat JSON of scores); default: the
            ``test_*`` metrics of the checkpoint's MLflow run, when known.
        recipe: The pipeline file that trained the model (seed and epochs are read from it).
        half: Store the network's weights as float16.
        max_mb: Largest weight file, in megabytes (10**6 bytes).
        tracking_uri: MLflow store for ``runs:/`` and ``models:/`` URIs.

    Raises:
        ConfigError: a bad name or an unreadable card, scores or recipe file.
        ModelError: not a satcnn checkpoint, outputs that differ beyond the tolerance, or a
            weight file over ``max_mb``.
        OutputError: the folder cannot be written.
    """
    if not NAME_PATTERN.match(name):
        raise ConfigError(
            f"model name {name!r}: use lower-case letters, digits, '.', '_' and '-' (at most 64), "
            "starting with a letter or digit"
        )
    fields = _read_mapping(Path(card_file), "card file") if card_file else {}
    unknown = sorted(set(fields) - set(PERSON_FIELDS))
    if unknown:
        known = ", ".join(PERSON_FIELDS)
        raise ConfigError(f"{card_file}: unknown card entries {', '.join(unknown)}; known: {known}")
    scores, settings = read_scores(Path(scores_file)) if scores_file else ({}, {})
    training: dict[str, Any] = _recipe_facts(Path(recipe)) if recipe else {}
    out = check_writable(Path(out_dir) if out_dir is not None else package_dir())

    path, source_run, registered = resolve_model_path(model, tracking_uri)
    ckpt = read_checkpoint(path, "cpu")
    if not scores and source_run:  # the fit's own scores on its test split, when it logged them
        from satcnn.inference.export_tracking import run_metrics

        scores = {k: v for k, v in run_metrics(source_run, tracking_uri).items() if k.startswith("test_")}
        settings = {"measured": f"on the test split by the fit (MLflow run {source_run})"} if scores else {}
    raw: dict[str, Any] = {"state_dict": _packed_state(ckpt, half)}
    meta = parse_checkpoint(ckpt.raw, path).meta  # a copy of the record to attach to the packed file
    attach(raw, meta)
    packed = parse_checkpoint(raw, path)

    reference, _ = build_model(ckpt)
    rebuilt, _ = build_model(packed)
    x = _check_input(ckpt, reference.model.size_multiple)
    got, want = _probabilities(rebuilt, x, meta.task), _probabilities(reference, x, meta.task)
    diff = float((got - want).abs().max())
    tolerance = HALF_TOLERANCE if half else FULL_TOLERANCE
    if not diff <= tolerance:
        raise ModelError(
            f"the packed model's probabilities differ from the checkpoint's by {diff:.3g} (> {tolerance:g}) "
            f"on the check input{'; pack without --half' if half else ''}",
            path,
        )
    buffer = io.BytesIO()
    torch.save(raw, buffer)
    data = buffer.getvalue()
    if len(data) > max_mb * 1e6:
        raise ModelError(
            f"the packed weights take {len(data) / 1e6:.1f} MB, over the {max_mb:g} MB a shipped model may "
            "take; "
            f"{'use --half or ' if not half else ''}train a narrower model",
            path,
        )
    ckpt_path, card_path = out / f"{name}.ckpt", out / f"{name}.json"
    training = {
        **training,
        "source": _portable(model),
        "source_run_id": source_run,
        **({"registered": {**registered, "source": _portable(registered["source"])}} if registered else {}),
        "source_weights_digest": ckpt.meta.weights_digest,
    }
    weights = {
        "file": ckpt_path.name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "dtype": "float16" if half else "float32",
        "parameters": sum(p.numel() for p in rebuilt.model.parameters()),
        "weights_digest": packed.meta.weights_digest,
        "max_abs_diff": diff,
    }
    card = _card(packed, name, fields, scores, settings, training, weights)
    try:
        with atomic_output(ckpt_path) as tmp:
            tmp.write_bytes(data)
    except OSError as err:
        raise output_error(err, ckpt_path) from None
    write_text_atomic(card_path, json.dumps(card, indent=2) + "\n")
    return PackResult(ckpt_path, card_path, len(data), diff, card)
