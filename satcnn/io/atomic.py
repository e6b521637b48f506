"""Atomic file output: a file is complete at its final path, or absent.

Every atomic write in satcnn ends in :func:`publish` (the rename onto the final name). For tests,
``SATCNN_TEST_KILL_BEFORE_RENAME=<glob>`` makes the process SIGKILL itself right before publishing
a file whose name matches the glob (e.g. ``t2.tif``): a hard kill at a known point, after the
temporary is complete and before the final name exists (``tests/inference/test_infer_kill.py``).
``SATCNN_TEST_KILL_SIGNAL=TERM`` sends that signal instead of SIGKILL.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

from satcnn.errors import output_error

__all__ = [
    "KILL_HOOK_ENV",
    "KILL_SIGNAL_ENV",
    "atomic_output",
    "check_writable",
    "publish",
    "write_text_atomic",
]

KILL_HOOK_ENV = "SATCNN_TEST_KILL_BEFORE_RENAME"
KILL_SIGNAL_ENV = "SATCNN_TEST_KILL_SIGNAL"


def publish(tmp: str | Path, final: str | Path) -> None:
    """``os.replace(tmp, final)``: the one rename that publishes an atomic output (see the test hook)."""
    pattern = os.environ.get(KILL_HOOK_ENV)
    if pattern and fnmatch.fnmatch(Path(final).name, pattern):
        os.kill(os.getpid(), signal.Signals[f"SIG{os.environ.get(KILL_SIGNAL_ENV, 'KILL')}"])
    os.replace(tmp, final)


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary file is hidden (``.<stem>.<random>.tmp<suffix>``) and lives in the same folder,
    so ``os.replace`` is atomic: readers never see a half-written file, and a file that was
    already at ``path`` survives a failed write. On error the temporary file is removed.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.stem}.{uuid.uuid4().hex[:8]}.tmp{final.suffix}")
    try:
        yield tmp
        publish(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically.

    Raises:
        OutputError: The file cannot be written (read-only folder, full disk), naming it.
    """
    try:
        with atomic_output(path) as tmp:
            tmp.write_text(text)
    except OSError as err:
        raise output_error(err, path) from None


def check_writable(folder: str | Path) -> Path:
    """Create ``folder`` if needed and prove it takes a file (a real write, right for root too).

    Raises:
        OutputError: The folder cannot be created or written (read-only, permissions, full disk).
    """
    p = Path(folder)
    try:
        p.mkdir(parents=True, exist_ok=True)
        probe = p / f".satcnn-write-test.{uuid.uuid4().hex[:8]}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise output_error(err, p, "cannot write to the output folder") from None
    return p
