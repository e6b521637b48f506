"""Shipped models, addressable by name: ``pretrained:<name>`` wherever a model is accepted.

A shipped model is two files in a model folder: ``<name>.ckpt``, a satcnn checkpoint holding only
what inference needs (the ``satcnn`` record and the weights, see
:mod:`satcnn.models.checkpoint`; written by ``satcnn models pack``), and ``<name>.json``, its
model card (:data:`CARD_FIELDS`: task, bands, resolution, training data, recipe, seed, scores,
the data's licence, the satcnn version and the sha256 of the weight file).

Model folders, searched in order: each folder of ``$SATCNN_PRETRAINED_DIR`` (``os.pathsep``
separated: a site's or a user's own models; tests use it too), then the package's own
``satcnn/pretrained/`` (installed as package data, found by an editable install in the source
tree). A name found in several folders is taken from the first.

The card's ``weights.sha256`` is checked against the weight file before it is read, so a damaged
or swapped file is refused with one line naming it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from satcnn.errors import ModelError

__all__ = [
    "CARD_FIELDS",
    "ENV_DIR",
    "NAME_PATTERN",
    "PREFIX",
    "PretrainedModel",
    "file_sha256",
    "find_pretrained",
    "is_pretrained_ref",
    "list_pretrained",
    "package_dir",
    "pretrained_dirs",
    "resolve_pretrained",
]

PREFIX = "pretrained:"
ENV_DIR = "SATCNN_PRETRAINED_DIR"
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
CKPT_SUFFIX = ".ckpt"
CARD_SUFFIX = ".json"

#: The card's entries, in the order they are written (``satcnn models pack``).
CARD_FIELDS = (
    "name",
    "description",
    "task",
    "architecture",
    "model",
    "bands",
    "classes",
    "patch_size",
    "input_dtype",
    "resolution_m",
    "threshold",
    "normalization",
    "training",
    "scores",
    "data_licence",
    "satcnn_version",
    "weights",
    "created",
)


def package_dir() -> Path:
    """The package's own model folder, ``satcnn/pretrained/`` (it may hold no model)."""
    return Path(__file__).resolve().parent.parent / "pretrained"


def pretrained_dirs() -> list[Path]:
    """The model folders, in search order: ``$SATCNN_PRETRAINED_DIR``'s, then the package's."""
    extra = [Path(p).expanduser() for p in os.environ.get(ENV_DIR, "").split(os.pathsep) if p.strip()]
    return [*extra, package_dir()]


def file_sha256(path: Path) -> str:
    """The hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class PretrainedModel:
    """A shipped model: its weight file and its card.

    Attributes:
        name: The name (``pretrained:<name>``).
        checkpoint: The weight file, ``<name>.ckpt``.
        card_path: The card, ``<name>.json``.
        card: The card's entries.
    """

    name: str
    checkpoint: Path
    card_path: Path
    card: dict[str, Any]

    @property
    def size_bytes(self) -> int:
        """Size of the weight file in bytes."""
        return self.checkpoint.stat().st_size

    def verify(self) -> None:
        """Check the weight file against the card's sha256.

        Raises:
            ModelError: the card records no sha256, or the file's differs.
        """
        expected = (self.card.get("weights") or {}).get("sha256")
        if not expected:
            raise ModelError("the model card records no weights.sha256; pack it again", self.card_path)
        actual = file_sha256(self.checkpoint)
        if actual != expected:
            raise ModelError(
                f"the weight file's sha256 is {actual}, not the {expected} its card records: the file was "
                "modified or damaged; reinstall satcnn or pack the model again",
                self.checkpoint,
            )


def _read_card(path: Path) -> dict[str, Any]:
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelError(f"cannot read the model card: {err}", path) from None
    if not isinstance(card, dict):
        raise ModelError(f"the model card is a JSON {type(card).__name__}, not an object", path)
    return card


def list_pretrained() -> list[PretrainedModel]:
    """Every shipped model (a ``<name>.ckpt`` beside its ``<name>.json``), sorted by name.

    Raises:
        ModelError: a card cannot be read.
    """
    found: dict[str, PretrainedModel] = {}
    for folder in pretrained_dirs():
        if not folder.is_dir():
            continue
        for card_path in sorted(folder.glob(f"*{CARD_SUFFIX}")):
            name = card_path.stem
            ckpt = card_path.with_suffix(CKPT_SUFFIX)
            if name in found or not ckpt.is_file() or not NAME_PATTERN.match(name):
                continue
            found[name] = PretrainedModel(name, ckpt, card_path, _read_card(card_path))
    return [found[n] for n in sorted(found)]


def is_pretrained_ref(ref: str | Path) -> bool:
    """Whether ``ref`` is ``pretrained:<name>``."""
    return isinstance(ref, str) and ref.startswith(PREFIX)


def find_pretrained(name: str) -> PretrainedModel:
    """The shipped model ``name``.

    Raises:
        ModelError: no model of that name; the message lists the available names.
    """
    for model in list_pretrained():
        if model.name == name:
            return model
    names = ", ".join(m.name for m in list_pretrained()) or "none installed"
    raise ModelError(
        f"unknown pretrained model {name!r}; available: {names} (`satcnn models list` shows them)"
    )


def resolve_pretrained(ref: str) -> PretrainedModel:
    """The shipped model behind ``pretrained:<name>``, its weight file checked against its card.

    Raises:
        ModelError: an unknown name, or a weight file that differs from its card.
    """
    model = find_pretrained(ref.removeprefix(PREFIX))
    model.verify()
    return model
