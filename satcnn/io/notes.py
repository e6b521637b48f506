"""Warnings about one input that may hold for thousands of them: one line per condition per run.

A check that finds something worth a warning about one file (a band tagged alpha that holds
data, a tile without a CRS) calls :func:`note`. Outside a run it logs the warning at once.
Inside :func:`collecting` (a batch run), it is recorded instead, and :meth:`Notes.flush` logs
each condition once at the end: the file itself when one file has it, else the count and an
example (``band 4 (alpha) is tagged alpha but holds varying values; using it as data: 4,032
inputs (e.g. a.tif)``). :meth:`Notes.of` gives each file's notes for the run's manifest.

The collector is a context variable, so a reader thread started with the caller's context
(``contextvars.copy_context().run``) records into the same run.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

logger = logging.getLogger(__name__)

__all__ = ["Notes", "collecting", "note"]


class Notes:
    """The conditions noted during one run: per message, the files it holds for, in order."""

    def __init__(self) -> None:
        self._files: dict[str, list[str]] = {}
        self._by_file: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def add(self, path: str | Path, message: str) -> None:
        """Record that ``message`` holds for ``path``."""
        key = str(path)
        with self._lock:
            self._files.setdefault(message, []).append(key)
            self._by_file.setdefault(key, []).append(message)

    def of(self, path: str | Path) -> list[str]:
        """The messages noted for ``path``, in order."""
        with self._lock:
            return list(self._by_file.get(str(path), []))

    def flush(self, log: logging.Logger, details: str | Path | None = None) -> None:
        """Log each condition once (see the module docstring) and forget them.

        Args:
            log: Where to log.
            details: Where each file's notes are listed (the manifest), named when a condition
                holds for several files.
        """
        with self._lock:
            items, self._files, self._by_file = list(self._files.items()), {}, {}
        see = f"; each input's warnings are in {details}" if details is not None else ""
        for message, files in items:
            if len(files) == 1:
                log.warning("%s: %s", files[0], message)
            else:
                log.warning("%s: %s inputs (e.g. %s)%s", message, f"{len(files):,}", files[0], see)


_active: ContextVar[Notes | None] = ContextVar("satcnn_notes", default=None)


def note(path: str | Path, message: str, log: logging.Logger = logger) -> None:
    """Warn that ``message`` holds for ``path``: at once, or once per run inside :func:`collecting`."""
    notes = _active.get()
    if notes is None:
        log.warning("%s: %s", path, message)
    else:
        notes.add(path, message)


@contextmanager
def collecting() -> Iterator[Notes]:
    """Collect :func:`note` calls of this context into one :class:`Notes` (the caller flushes it)."""
    notes = Notes()
    token = _active.set(notes)
    try:
        yield notes
    finally:
        _active.reset(token)
