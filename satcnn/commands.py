"""The commands beside LightningCLI's: ``data``, ``infer``, ``vectorize``, ``evaluate``, ``ui``, ``runs``,
``export``, ``models``, ``pipeline`` and ``view``.

Thin: parse, then call the library.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def ui_main(argv: list[str]) -> int:
    """``satcnn ui [--host 127.0.0.1] [--port 5000]``: serve the MLflow UI on the project's store."""
    from satcnn.tracking.ui_cli import ui_main as run

    return run(argv)


def runs_main(argv: list[str]) -> int:
    """``satcnn runs clean``: mark runs left RUNNING by a hard-killed fit as KILLED."""
    from satcnn.tracking.runs_cli import runs_main as run

    return run(argv)


def vectorize_main(argv: list[str]) -> int:
    """``satcnn vectorize roads|classes ...``: road networks and land-cover polygons from rasters."""
    from satcnn.vector.cli import vectorize_main as run

    return run(argv)


def evaluate_main(argv: list[str]) -> int:
    """``satcnn evaluate roads|classes|graph ...``: score road masks, class maps or road graphs."""
    from satcnn.evaluate.cli import evaluate_main as run

    return run(argv)


def data_main(argv: list[str]) -> int:
    """``satcnn data synth-roads|png-to-geotiff|rasterize-roads|split-scene ...``: data preparation tools."""
    from satcnn.data.cli import data_main as run

    return run(argv)


def infer_main(argv: list[str]) -> int:
    """``satcnn infer --model M --input I --output DIR``: georeferenced masks and class maps."""
    from satcnn.inference.cli import infer_main as run
    from satcnn.view.catalog import view_command

    return run(argv, view_command)


def export_main(argv: list[str]) -> int:
    """``satcnn export --model URI --format onnx|pt2|torchscript [--out PATH]``: a model outside Python."""
    from satcnn.inference.export_cli import export_main as run

    return run(argv)


def models_main(argv: list[str]) -> int:
    """``satcnn models list|show|pack``: the shipped models (``--model pretrained:<name>``)."""
    from satcnn.inference.models_cli import models_main as run

    return run(argv)


def pipeline_main(argv: list[str]) -> int:
    """``satcnn pipeline run FILE``: validate -> fit -> register -> infer -> evaluate -> report."""
    from satcnn.pipeline.cli import pipeline_main as run

    return run(argv)


def view_main(argv: list[str]) -> int:
    """``satcnn view PATH``: a local web map of an ``infer`` or pipeline output folder."""
    from satcnn.view.cli import view_main as run

    return run(argv)
