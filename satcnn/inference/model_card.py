"""The model card of an export: a STAC Item with the Machine Learning Model (MLM) extension's fields.

Every export (``satcnn export``) is written with its card beside it, ``<export file>.json``
(``best.onnx`` -> ``best.onnx.json``), and the same card is logged to MLflow with the export.
The card follows STAC MLM v1.3 (https://github.com/stac-extensions/mlm): ``mlm:name``,
``mlm:architecture``, ``mlm:tasks``, ``mlm:framework``, ``mlm:framework_version``,
``mlm:accelerator``, ``mlm:total_parameters``, ``mlm:pretrained``, ``mlm:input`` (bands in input
order, the input structure, ``value_scaling``, ``resize_type``, ``pre_processing_function``) and
``mlm:output`` (result structure and ``classification:classes``), with the export as the
``mlm:model`` asset (``mlm:artifact_type``, ``file:size``, ``file:checksum``).

Scaling: the exported graph takes raw digital numbers and normalises them itself (the checkpoint's
per-band z-score, :mod:`satcnn.models.normalize`), so ``value_scaling`` is ``null``: a consumer must
not scale again. The z-score the graph applies is stated in ``satcnn:normalization``. Fields the
MLM extension has no name for are prefixed ``satcnn:``: the checkpoint record (which rebuilds the
metadata of :class:`~satcnn.inference.model_io.LoadedModel` for ``infer --model x.onnx``), the
metrics known for the model, its source and the export's parity check.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from satcnn.errors import ModelError
from satcnn.io.atomic import write_text_atomic
from satcnn.io.stac_outputs import file_checksum
from satcnn.models.checkpoint import CheckpointMeta

__all__ = [
    "MLM_SCHEMA",
    "ExportInfo",
    "build_card",
    "card_path",
    "read_card",
    "write_card",
]

MLM_SCHEMA = "https://stac-extensions.github.io/mlm/v1.3.0/schema.json"
FILE_SCHEMA = "https://stac-extensions.github.io/file/v2.1.0/schema.json"
CARD_SUFFIX = ".json"
DIM_ORDER = ["batch", "channel", "height", "width"]

# mlm:architecture: the architecture's established name (the registry name when none applies)
ARCHITECTURES = {
    "deepsat_cnn": "DeepSat CNN",
    "lenet": "LeNet",
    "alexnet": "AlexNet",
    "vgg": "VGG",
    "inception": "Inception",
    "resnet": "ResNet",
    "xception": "Xception",
    "seresnet": "SE-ResNet",
    "resunet": "ResUNet",
    "unet": "U-Net",
}

# mlm:model asset per format: media type, artifact type, and whether it loads without the code
ARTIFACTS = {
    "onnx": ("application/octet-stream; framework=onnx", "onnx"),
    "pt2": ("application/octet-stream; framework=pytorch; profile=export", "torch.export"),
    "torchscript": ("application/octet-stream; framework=pytorch; profile=torchscript", "torch.jit.trace"),
}


@dataclass(frozen=True)
class ExportInfo:
    """What an export is, for its card: format, file, and the eager-vs-export check.

    Attributes:
        fmt: ``onnx``, ``pt2`` or ``torchscript``.
        path: The exported file (its final path).
        size: Its size in bytes.
        checksum: Its ``file:checksum`` (:func:`file_checksum`).
        example_shapes: The input shapes of the parity check.
        max_abs_diff: Largest absolute difference between the eager and the exported outputs.
        opset: ONNX opset, for ONNX exports.
    """

    fmt: str
    path: Path
    size: int
    checksum: str
    example_shapes: list[list[int]]
    max_abs_diff: float
    opset: int | None = None


def card_path(export_path: str | Path) -> Path:
    """Where the card of ``export_path`` lives: ``<export file>.json``."""
    p = Path(export_path)
    return p.with_name(p.name + CARD_SUFFIX)


def _input_shape(meta: CheckpointMeta) -> list[int]:
    side = meta.patch_size if meta.task == "classification" and meta.patch_size else -1
    return [-1, len(meta.bands), side, side]


def _outputs(meta: CheckpointMeta, num_outputs: int) -> list[dict[str, Any]]:
    classes = [{"value": i, "name": name} for i, name in enumerate(meta.classes)]
    if meta.task == "classification":
        return [
            {
                "name": "scores",
                "tasks": ["scene-classification"],
                "result": {
                    "shape": [-1, num_outputs],
                    "dim_order": ["batch", "class"],
                    "data_type": "float32",
                },
                "description": "class logits of each patch; softmax gives probabilities, argmax the class",
                "classification:classes": classes,
                "post_processing_function": None,
            }
        ]
    description = (
        "road logit per pixel; sigmoid gives the probability of class 1"
        if num_outputs == 1
        else "per-pixel class logits; softmax over the class dimension gives probabilities"
    )
    return [
        {
            "name": "logits",
            "tasks": ["semantic-segmentation"],
            "result": {
                "shape": [-1, num_outputs, -1, -1],
                "dim_order": ["batch", "class", "height", "width"],
                "data_type": "float32",
            },
            "description": description,
            "classification:classes": classes,
            "post_processing_function": None,
        }
    ]


def _input(meta: CheckpointMeta, size_multiple: int) -> dict[str, Any]:
    sides = (
        f"{meta.patch_size} x {meta.patch_size} patches"
        if meta.task == "classification"
        else f"height and width multiples of {size_multiple}"
    )
    return {
        "name": "image",
        "bands": list(meta.bands),
        "input": {"shape": _input_shape(meta), "dim_order": DIM_ORDER, "data_type": "float32"},
        "description": (
            f"raw digital numbers ({meta.input_dtype or 'as read'}) as float32, {sides}; the graph "
            "normalises them itself (satcnn:normalization), so no value scaling is applied before it"
        ),
        "value_scaling": None,
        "resize_type": None,
        "pre_processing_function": None,
    }


def build_card(
    meta: CheckpointMeta,
    network: torch.nn.Module,
    info: ExportInfo,
    *,
    size_multiple: int = 1,
    num_outputs: int,
    metrics: Mapping[str, float] | None = None,
    source: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The STAC MLM card of an export (see the module docstring).

    Args:
        meta: The checkpoint record of the exported model.
        network: The network (without the normaliser), for the parameter count.
        info: The export.
        size_multiple: Input sides must be multiples of this (segmenters).
        num_outputs: Output channels (classes, or 1 for a road logit).
        metrics: Metrics known for the model (MLflow run, checkpoint's best score).
        source: Where the model came from (``uri``, ``run_id``, ``registered``...).
    """
    digest = meta.weights_digest or ""
    short = digest.split(":")[-1][:12]
    name = f"satcnn-{meta.model.name}-{short}" if short else f"satcnn-{meta.model.name}"
    pretrained = meta.model.kwargs.get("pretrained")
    media_type, artifact_type = ARTIFACTS[info.fmt]
    properties: dict[str, Any] = {
        "datetime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "description": f"satcnn {meta.task} model {meta.model.name} exported as {info.fmt}",
        "mlm:name": name,
        "mlm:architecture": ARCHITECTURES.get(meta.model.name, meta.model.name),
        "mlm:tasks": ["scene-classification" if meta.task == "classification" else "semantic-segmentation"],
        "mlm:framework": "PyTorch",
        "mlm:framework_version": torch.__version__.split("+")[0],
        "mlm:accelerator": None,  # runs on CPU or CUDA; nothing device-specific is compiled in
        "mlm:accelerator_constrained": False,
        "mlm:accelerator_summary": "exported on CPU; runs on any CPU, or CUDA where the runtime has it",
        "mlm:total_parameters": int(sum(p.numel() for p in network.parameters())),
        "mlm:pretrained": pretrained is not None,
        "mlm:pretrained_source": Path(str(pretrained)).name if pretrained is not None else None,
        "mlm:input": [_input(meta, size_multiple)],
        "mlm:output": _outputs(meta, num_outputs),
        "mlm:hyperparameters": {
            "patch_size": meta.patch_size,
            "size_multiple": size_multiple,
            "model_kwargs": dict(meta.model.kwargs),
        },
        "satcnn:normalization": {
            "type": "z-score",
            "in_graph": True,
            "mean": list(meta.mean),
            "stddev": list(meta.std),
        },
        "satcnn:metrics": dict(metrics or {}),
        "satcnn:source": dict(source or {}),
        "satcnn:checkpoint": meta.to_dict(),
        "satcnn:export": {
            "format": info.fmt,
            "example_shapes": info.example_shapes,
            "max_abs_diff": info.max_abs_diff,
            "opset": info.opset,
        },
    }
    asset: dict[str, Any] = {
        "href": info.path.name,
        "title": f"{info.fmt} export of {name}",
        "type": media_type,
        "roles": ["mlm:model", "mlm:compiled", "model"],
        "mlm:artifact_type": artifact_type,
        "file:size": info.size,
        "file:checksum": info.checksum,
    }
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": [MLM_SCHEMA, FILE_SCHEMA],
        "id": f"{name}-{info.fmt}",
        "geometry": None,
        "properties": properties,
        "assets": {"model": asset},
        "links": [],
    }


def write_card(card: Mapping[str, Any], path: str | Path) -> Path:
    """Write ``card`` as indented JSON at ``path``, atomically."""
    write_text_atomic(path, json.dumps(card, indent=2) + "\n")
    return Path(path)


def read_card(export_path: str | Path) -> tuple[dict[str, Any], CheckpointMeta]:
    """The card beside ``export_path`` and the checkpoint record it holds, checked against the file.

    Raises:
        ModelError: the card is missing or unreadable, holds no satcnn record, or the export's
            size or checksum differ from the card's (the file was modified or belongs to another card).
    """
    export_path = Path(export_path)
    path = card_path(export_path)
    if not path.is_file():
        raise ModelError(
            f"no model card {path.name} beside the export; export it with `satcnn export`, which writes both",
            export_path,
        )
    try:
        card = json.loads(path.read_text())
        record = card["properties"]["satcnn:checkpoint"]
        asset = card["assets"]["model"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ModelError(f"not a satcnn model card ({type(err).__name__}: {err})", path) from None
    meta = CheckpointMeta.from_dict(record, path)
    size = export_path.stat().st_size
    if asset.get("file:size") not in (None, size) or asset.get("file:checksum") not in (
        None,
        file_checksum(export_path),
    ):
        raise ModelError(
            f"the file differs from its model card {path.name} (size or checksum): it was modified, "
            "or the card belongs to another export; export the model again",
            export_path,
        )
    return card, meta
