"""Run a ``torch.export`` program (``.pt2``) or a TorchScript export with a checkpoint's call contract.

``load_model("x.pt2")`` (and so ``satcnn infer --model x.pt2``) reads the export's model card
(``x.pt2.json``, written by ``satcnn export``), checks the file against it, and returns a
:class:`~satcnn.inference.model_io.LoadedModel` whose module takes raw digital numbers: the
normaliser is inside the exported graph, so the module's own normaliser is the identity, as for
ONNX (:mod:`satcnn.inference.onnx_model`). The card gives what the graph does not: bands, classes,
patch size, ``size_multiple``. Classifiers were exported at their patch size, so class maps slide
the exported patch classifier over the raster.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from satcnn.errors import ModelError
from satcnn.inference.model_card import read_card
from satcnn.inference.model_io import LoadedModel
from satcnn.models.base import SatcnnModel
from satcnn.models.normalize import Normalize, NormalizedModel

logger = logging.getLogger(__name__)

__all__ = ["ExportedNetwork", "load_torch_export"]


class ExportedNetwork(SatcnnModel):
    """A loaded ``torch.export`` or TorchScript graph: float32 ``(N, C, H, W)`` in, logits out.

    Args:
        graph: The loaded program (``torch.export.load(f).module()`` or ``torch.jit.load(f)``).
        size_multiple: Input sides must be multiples of this (from the card).
        patch_size: A classifier's patch side (from the card); None for segmenters.
    """

    def __init__(self, graph: nn.Module, size_multiple: int = 1, patch_size: int | None = None) -> None:
        super().__init__()
        self.graph = graph
        self.size_multiple = size_multiple
        self.patch_size = patch_size

    def train(self, mode: bool = True) -> ExportedNetwork:
        """Set the flag only: an exported graph stays in eval mode (``torch.export`` refuses ``train()``)."""
        self.training = mode
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        out: torch.Tensor = self.graph(x)
        return out


def _load_graph(path: Path, kind: str, device: torch.device) -> nn.Module:
    try:
        if kind == "TorchScript":
            return torch.jit.load(str(path), map_location=device)
        return torch.export.load(str(path)).module().to(device)
    except Exception as err:  # torch raises many types on a foreign or damaged archive
        detail = " ".join(str(err).split())[:300] or type(err).__name__
        raise ModelError(f"cannot load the {kind} export: {detail}", path) from None


def load_torch_export(
    path: Path,
    kind: str,
    uri: str,
    device: torch.device,
    source_run_id: str | None = None,
    registered: dict[str, str] | None = None,
) -> LoadedModel:
    """A ``.pt2`` or TorchScript export and its card as a :class:`LoadedModel` (see the module docstring).

    Args:
        path: The export.
        kind: ``torch.export (.pt2)`` or ``TorchScript`` (``satcnn.models.checkpoint.export_format``).
        uri: The model as the user gave it.
        device: Where the graph runs.
        source_run_id: The MLflow run the export came from, if any.
        registered: Registered-model tags, if any.

    Raises:
        ModelError: no card beside the file, a card that does not describe this file, or a file
            that torch cannot load.
    """
    card, meta = read_card(path)
    hyper = card["properties"].get("mlm:hyperparameters") or {}
    graph = _load_graph(path, kind, device)
    network: SatcnnModel = ExportedNetwork(graph, int(hyper.get("size_multiple") or 1), meta.patch_size)
    channels = len(meta.bands)
    identity = Normalize.from_stats([0.0] * channels, [1.0] * channels)  # the graph normalises
    module = NormalizedModel(network, identity).to(device).eval()
    logger.info(
        "loaded %s %s model %s (%s) from %s", kind, meta.task, meta.model.name, meta.weights_digest, path
    )
    return LoadedModel(module, meta, uri, path.resolve(), source_run_id, dict(registered or {}))
