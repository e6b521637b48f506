"""``satcnn ui`` command line: parse, then call ``satcnn.tracking.ui.serve_ui``."""

from __future__ import annotations

from satcnn.flags import command_parser, parse_options
from satcnn.tracking.ui import UiOptions, serve_ui


def ui_main(argv: list[str]) -> int:
    """``satcnn ui [--host 127.0.0.1] [--port 5000] ...``: serve the MLflow UI on the project's store."""
    parser = command_parser(
        prog="satcnn ui",
        description="Serve the MLflow UI on the project's tracking store until Ctrl-C or SIGTERM, "
        "which stop the whole server (exit status 0).",
        options=UiOptions,
    )
    return serve_ui(parse_options(parser, UiOptions, parser.parse_args(argv)))
