"""``satcnn models list | show | pack``: the shipped models (``--model pretrained:<name>``).

``list`` prints each model's name, task, bands, size, scores and how it was trained (from its
card); ``show`` prints one card; ``pack`` makes a shippable model from a checkpoint
(:func:`satcnn.inference.pack.pack_model`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from satcnn.checks import require_above
from satcnn.flags import add_subcommand, command_parser, option, parse_subcommand, satcnn_command
from satcnn.inference.pack import MAX_MB, pack_model
from satcnn.models.pretrained import ENV_DIR, PretrainedModel, find_pretrained, list_pretrained

__all__ = ["ModelsListOptions", "ModelsPackOptions", "ModelsShowOptions", "format_model", "models_main"]

EPILOG = f"""\
Examples:
  satcnn models list
  satcnn infer --model pretrained:roads-massachusetts --input tile.tif --output out/ --vector
  satcnn models pack models:/roads-resunet-massachusetts@real --name roads-massachusetts \\
      --recipe pipelines/roads_massachusetts.yaml --card pipelines/roads_massachusetts.card.yaml \\
      --scores outputs/real-roads/massachusetts/evaluate/metrics.json

Shipped models live in the package's satcnn/pretrained/ and in the folders of ${ENV_DIR}
(searched first). `pack` writes <name>.ckpt (weights and the record satcnn rebuilds the model from,
no optimiser state; --half stores float16 weights, restored to float32 on load) and <name>.json
(the model card), at most {MAX_MB:g} MB.
"""

# Scores shown by `list`, in this order when present (the rest follow, alphabetically).
HEADLINE = ("breakeven", "iou", "f1", "apls", "relaxed_precision", "relaxed_recall", "acc", "test_acc")


@dataclass(frozen=True, kw_only=True)
class ModelsListOptions:
    """``satcnn models list``: how to print."""

    json: bool = option(False, help="print the cards as one JSON list")


@dataclass(frozen=True, kw_only=True)
class ModelsShowOptions:
    """``satcnn models show NAME``: which model."""

    name: str = option(positional=True, help="shipped model name (see `satcnn models list`)")


@dataclass(frozen=True, kw_only=True)
class ModelsPackOptions:
    """``satcnn models pack MODEL --name NAME``: what to pack, how, and where."""

    model: str = option(
        positional=True,
        help="checkpoint path, runs:/<run_id>[/<path>], models:/<name>/<version|@alias>, pretrained:<name>",
    )
    name: str = option(help="the shipped name: `--model pretrained:<name>`")
    out: str | None = option(None, help="model folder (default: the package's satcnn/pretrained/)")
    card: str | None = option(
        None,
        help="YAML/JSON with description, resolution_m, threshold, data_licence, training: {data, command}",
    )
    scores: str | None = option(None, help="an evaluate metrics.json (or a flat JSON of scores)")
    recipe: str | None = option(None, help="the pipeline file that trained the model (seed, epochs)")
    half: bool = option(False, help="store float16 weights (restored to float32 on load)")
    max_mb: float = option(MAX_MB, help=f"largest weight file in MB (default {MAX_MB:g})")
    tracking_uri: str | None = option(None, help="MLflow store for runs:/ and models:/ URIs")

    def __post_init__(self) -> None:
        require_above("max_mb", self.max_mb, 0.0, "MB")


def _scores_text(card: Mapping[str, Any], limit: int = 4) -> str:
    values = (card.get("scores") or {}).get("values") or {}
    keys = [k for k in HEADLINE if k in values] + sorted(k for k in values if k not in HEADLINE)
    return ", ".join(f"{k} {values[k]:.3f}" for k in keys[:limit]) or "no scores"


def format_model(model: PretrainedModel) -> str:
    """Two lines: name, task, bands, size and scores; then how it was trained."""
    card = model.card
    training = card.get("training") or {}
    how = training.get("recipe") or training.get("source") or "unknown recipe"
    if training.get("seed") is not None:
        how += f", seed {training['seed']}"
    if training.get("epochs") is not None:
        how += f", {training['epochs']} epochs"
    data = training.get("data")
    res = card.get("resolution_m")
    bands = ",".join(card.get("bands") or [])
    head = (
        f"{model.name}  {card.get('task', '?')} ({card.get('architecture', '?')})  bands {bands}"
        f"{f'  {res:g} m' if isinstance(res, int | float) else ''}  {model.size_bytes / 1e6:.2f} MB  "
        f"{_scores_text(card)}"
    )
    tail = f"    trained: {how}" + (f"; data: {data}" if data else "")
    if card.get("data_licence"):
        tail += f"; data licence: {card['data_licence']}"
    return f"{head}\n{tail}"


def models_main(argv: list[str]) -> int:
    """Run ``satcnn models list|show|pack``; errors propagate to the CLI's one-line handler."""
    parser = command_parser(
        prog="satcnn models",
        description="Shipped models, used by name: --model pretrained:<name>.",
        epilog=EPILOG,
    )
    sub = parser.add_subparsers(dest="action", required=True)
    add_subcommand(sub, "list", ModelsListOptions, help="the shipped models and their scores")
    add_subcommand(sub, "show", ModelsShowOptions, help="one model's card (JSON)")
    add_subcommand(sub, "pack", ModelsPackOptions, help="make a shippable model from a checkpoint")
    options = parse_subcommand(parser, argv)
    out = sys.stdout
    if isinstance(options, ModelsListOptions):
        models = list_pretrained()
        if options.json:
            out.write(json.dumps([m.card for m in models], indent=2) + "\n")
        elif not models:
            out.write(f"no shipped models (satcnn/pretrained/ and ${ENV_DIR} hold none)\n")
        else:
            out.write("\n".join(format_model(m) for m in models) + "\n")
    elif isinstance(options, ModelsShowOptions):
        model = find_pretrained(options.name)
        out.write(json.dumps(model.card, indent=2) + "\n")
    else:
        result = pack_model(
            options.model,
            options.name,
            options.out,
            card_file=options.card,
            scores_file=options.scores,
            recipe=options.recipe,
            half=options.half,
            max_mb=options.max_mb,
            tracking_uri=options.tracking_uri,
        )
        weights = result.card_data["weights"]
        out.write(
            f"wrote {result.checkpoint} ({result.size_bytes / 1e6:.2f} MB, {weights['dtype']} weights; max "
            f"probability difference to the checkpoint {result.max_abs_diff:.2g})\n"
            f"model card: {result.card}\n"
            f"use it: {satcnn_command('infer', '--model', f'pretrained:{options.name}')} --input <raster> "
            "--output <folder>\n"
        )
    out.flush()
    return 0
