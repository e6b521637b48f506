"""Where runs are tracked: a light module (no Lightning, no MLflow import)."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_STORE = "mlflow.db"


def default_tracking_uri() -> str:
    """``$MLFLOW_TRACKING_URI``, or the SQLite store ``mlflow.db`` in the working directory."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / DEFAULT_STORE}"
