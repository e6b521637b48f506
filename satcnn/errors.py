"""Expected errors: each names the file and the problem, and the CLI turns it into one line.

Every class is also the matching built-in exception, so callers may catch either.
"""

from __future__ import annotations

from pathlib import Path


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
