"""The commands beside LightningCLI's: ``data``, ``infer`` and ``ui``. Thin: parse, then call the library."""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys

from satcnn.tracking.mlflow import default_tracking_uri

log = logging.getLogger(__name__)


def ui_main(argv: list[str]) -> int:
    """``satcnn ui [--host 127.0.0.1] [--port 5000]``: serve the MLflow UI on the project's store."""
    parser = argparse.ArgumentParser(prog="satcnn ui", description=ui_main.__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address (default: 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=5000, help="port (default: 5000)")
    parser.add_argument(
        "--backend-store-uri",
        default=None,
        help="tracking store (default: $MLFLOW_TRACKING_URI or sqlite:///<cwd>/mlflow.db)",
    )
    args = parser.parse_args(argv)
    store = args.backend_store_uri or default_tracking_uri()
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", store, "--host", args.host]
    cmd += ["--port", str(args.port)]
    log.info("MLflow UI on http://%s:%d for %s (Ctrl-C to stop)", args.host, args.port, store)
    try:
        return subprocess.call(cmd)
    except KeyboardInterrupt:
        return 0
