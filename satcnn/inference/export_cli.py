"""``satcnn export``: parse argv, call :func:`~satcnn.inference.export.export_model`, say what was written."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from satcnn.checks import require_choice
from satcnn.flags import command_parser, option, parse_options
from satcnn.inference.export import FORMATS, ExportFormat, export_model

__all__ = ["ExportOptions", "build_parser", "export_main"]

EPILOG = """\
Examples:
  satcnn export --model runs/1/<run_id>/checkpoints/best.ckpt --format onnx
  satcnn export --model models:/roads@champion --format pt2 --out exports/
  satcnn infer --model best.onnx --input tiles/ --output out/     (runs the ONNX file with onnxruntime)

Writes the export and its model card (<file>.json, STAC MLM fields: bands, scaling, classes, patch
size, metrics). The graph takes raw digital numbers and normalises them itself. A model from an
MLflow run is logged back to that run under export/.
"""


@dataclass(frozen=True, kw_only=True)
class ExportOptions:
    """``satcnn export``: which model, in which format, where."""

    model: str = option(
        help="checkpoint path, runs:/<run_id>[/<path>], models:/<name>/<version|@alias>, pretrained:<name>"
    )
    format: ExportFormat = option("onnx", choices=FORMATS, help="export format (default onnx)")
    out: str | None = option(
        None,
        help="file to write, or a folder: existing, or a name without suffix (default: beside a local "
        "checkpoint, else the working folder)",
    )
    track: bool = option(True, help="do not log the export to the model's MLflow run")

    def __post_init__(self) -> None:
        require_choice("format", self.format, FORMATS)


def build_parser() -> argparse.ArgumentParser:
    """The ``satcnn export`` argument parser."""
    p = command_parser(
        prog="satcnn export",
        description="Export a satcnn model (normaliser inside) as ONNX, torch.export (.pt2) or TorchScript.",
        epilog=EPILOG,
        options=ExportOptions,
    )
    return p


def export_main(argv: list[str]) -> int:
    """Run ``satcnn export``; errors propagate to the CLI's one-line handler."""
    parser = build_parser()
    options = parse_options(parser, ExportOptions, parser.parse_args(argv))
    result = export_model(options.model, options.format, options.out, track=options.track)
    shapes = ", ".join("x".join(str(d) for d in s) for s in result.example_shapes)
    lines = [
        f"wrote {result.path} ({result.fmt}; max abs difference to the eager model "
        f"{result.max_abs_diff:.3g} on {shapes})",
        f"model card: {result.card}",
    ]
    if result.mlflow_run_id:
        lines.append(f"logged to MLflow run {result.mlflow_run_id} under export/")
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
    return 0
