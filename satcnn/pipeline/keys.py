"""Stage keys: a digest of a stage's resolved settings and the content of its inputs.

A stage whose key matches a finished stage run is skipped and that run reused. The key changes
when a setting changes, when an input file's bytes change (a remote input's href: when the
version its server gives, ETag or Last-Modified, changes), or when an upstream stage produced a
new run (its run id and outputs are part of the settings the key covers).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from satcnn.io.remote import is_href, source_key, source_version

__all__ = ["file_digest", "path_digest", "stage_key"]

_CHUNK = 1 << 20


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def path_digest(path: str | Path) -> str:
    """sha256 over a file's bytes, or over a folder's files (relative names and bytes, sorted); for
    a remote href, over the href and its version (``satcnn.io.remote.source_version``)."""
    if is_href(path):
        return hashlib.sha256(f"{source_key(path)} {source_version(path)}".encode()).hexdigest()
    root = Path(path)
    if root.is_file():
        return file_digest(root)
    digest = hashlib.sha256()
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(root)).encode())
        digest.update(file_digest(file).encode())
    return digest.hexdigest()


def stage_key(stage: str, settings: Mapping[str, Any], inputs: Iterable[str | Path] = ()) -> str:
    """The key of ``stage``: sha256 over its settings (canonical JSON) and its inputs' digests."""
    payload = {
        "stage": stage,
        "settings": settings,
        "inputs": {str(p): path_digest(p) for p in sorted({str(p) for p in inputs})},
    }
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()
