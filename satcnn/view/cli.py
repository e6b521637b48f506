"""``satcnn view`` command line: parse, then call ``satcnn.view.server.serve_view``."""

from __future__ import annotations

from satcnn.flags import command_parser, parse_options
from satcnn.view.server import ViewOptions, serve_view


def view_main(argv: list[str]) -> int:
    """``satcnn view PATH [--host 127.0.0.1] [--port 8000] [--basemap URL]``: a web map of the outputs.

    PATH: an ``infer`` or pipeline output folder, or the outputs' STAC ``collection.json``.
    """
    parser = command_parser(
        prog="satcnn view",
        description="Serve a web map of a `satcnn infer` output folder (or a pipeline output folder, or the "
        "outputs' STAC collection.json): the "
        "input imagery, road probability, road mask, class map and road graph, at full resolution, until "
        "Ctrl-C or SIGTERM (exit status 0). Works offline unless --basemap is given.",
        options=ViewOptions,
    )
    return serve_view(parse_options(parser, ViewOptions, parser.parse_args(argv)))
