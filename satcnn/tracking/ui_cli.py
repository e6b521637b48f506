"""``satcnn ui`` command line: parse, then call ``satcnn.tracking.ui.serve_ui``."""

from __future__ import annotations

import argparse

from satcnn.tracking.ui import UiOptions, serve_ui


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (1-65535)")
    return port


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


def ui_main(argv: list[str]) -> int:
    """``satcnn ui [--host 127.0.0.1] [--port 5000] ...``: serve the MLflow UI on the project's store."""
    parser = argparse.ArgumentParser(
        prog="satcnn ui",
        description="Serve the MLflow UI on the project's tracking store until Ctrl-C or SIGTERM, "
        "which stop the whole server (exit status 0).",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only; others print a warning)",
    )
    parser.add_argument("--port", type=_port, default=5000, help="port (default: 5000)")
    parser.add_argument(
        "--backend-store-uri",
        default=None,
        help="tracking store (default: $MLFLOW_TRACKING_URI or sqlite:///<cwd>/mlflow.db)",
    )
    parser.add_argument("--workers", type=_positive, default=1, help="server worker processes (default: 1)")
    parser.add_argument(
        "--allowed-hosts",
        default=None,
        help="Host headers the server accepts, comma-separated, wildcards allowed "
        "(MLflow's default: localhost and private addresses)",
    )
    parser.add_argument(
        "--cors-allowed-origins",
        default=None,
        help="origins allowed to make cross-site changes, comma-separated (MLflow's default: localhost)",
    )
    args = parser.parse_args(argv)
    options = UiOptions(
        host=args.host,
        port=args.port,
        store=args.backend_store_uri,
        workers=args.workers,
        allowed_hosts=args.allowed_hosts,
        cors_allowed_origins=args.cors_allowed_origins,
    )
    return serve_ui(options)
