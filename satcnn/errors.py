"""Expected errors: each names the file and the problem, and the CLI turns it into one line.

Every class is also the matching built-in exception, so callers may catch either.
"""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType

RESUME_HINT_ENV = "SATCNN_RESUME_HINT"
"""How an interrupted ``satcnn fit`` says to resume, when its caller (a pipeline) knows better."""


class SatcnnError(Exception):
    """Base of the errors satcnn expects from bad input (exit status 1, no traceback)."""

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = str(path) if path is not None else None
        super().__init__(f"{path}: {message}" if path is not None else message)


class InputFileNotFoundError(SatcnnError, FileNotFoundError):
    """A file or folder the user named does not exist."""


class DataFormatError(SatcnnError, ValueError):
    """A file exists but its content is not what the format requires."""


class RasterError(DataFormatError):
    """A raster cannot be used: unreadable, no CRS, wrong bands, dtype or size."""


class ModelError(SatcnnError, ValueError):
    """A model cannot be built, loaded, or fed the given input."""


class ConfigError(SatcnnError, ValueError):
    """A configuration value is invalid."""


class UsageError(SatcnnError):
    """A command line satcnn cannot parse (an unknown option, a value of the wrong type): exit status 2."""


class OutputError(SatcnnError, OSError):
    """An output cannot be written: the folder is read-only, the disk is full, or too small for it."""


def output_error(err: OSError, path: str | Path, what: str = "cannot write") -> OutputError:
    """``err`` (an ``OSError`` from writing ``path``) as one line naming the file and the cause.

    A full disk (``ENOSPC``), a read-only file system (``EROFS``) and a missing permission
    (``EACCES``, ``EPERM``) each get advice; other errors keep their system message.
    """
    import errno

    advice = {
        errno.ENOSPC: "the disk is full; free space or write to another folder",
        errno.EDQUOT: "the disk quota is exceeded; free space or write to another folder",
        errno.EROFS: "the file system is read-only; write to another folder",
        errno.EACCES: "permission denied; write to a folder you can write to",
        errno.EPERM: "operation not permitted; write to a folder you can write to",
    }.get(err.errno or -1)
    return OutputError(f"{what}: {advice or err.strerror or err}", path)


def require_file(path: str | Path, what: str = "file") -> Path:
    """Return ``path`` as a Path, or raise InputFileNotFoundError naming it."""
    p = Path(path)
    if not p.exists():
        raise InputFileNotFoundError(f"{what} not found", p)
    return p


class Interrupted(Exception):
    """A run stopped by a signal after saving its state; the CLI exits with ``exit_code``.

    Args:
        message: the one line to print.
        exit_code: 128 + the signal number (143 for SIGTERM, 130 for SIGINT).
    """

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class SignalInterrupt(KeyboardInterrupt):
    """A SIGTERM raised in the main thread as Ctrl-C's ``KeyboardInterrupt`` is, so the same cleanup runs.

    Args:
        signum: The signal received.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def raise_on_signal(signum: int, frame: FrameType | None) -> None:
    """A signal handler that raises :class:`SignalInterrupt` (install it for SIGTERM)."""
    raise SignalInterrupt(signum)


def interrupt_signal(stop: KeyboardInterrupt) -> int:
    """The signal behind ``stop``: SIGTERM for a :class:`SignalInterrupt`, else SIGINT (Ctrl-C)."""
    return getattr(stop, "signum", signal.SIGINT)
