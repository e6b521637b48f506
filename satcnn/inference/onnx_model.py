"""Run an ONNX export through onnxruntime with the call contract of a loaded checkpoint.

``load_model("x.onnx")`` (and so ``satcnn infer --model x.onnx``) reads the export's model card
(``x.onnx.json``, :mod:`satcnn.inference.model_card`), checks the file against it, and returns a
:class:`~satcnn.inference.model_io.LoadedModel` whose module takes raw digital numbers, like a
checkpoint's: the normaliser is inside the ONNX graph, so the module's own normaliser is the
identity (mean 0, std 1). The network is an :class:`OnnxNetwork`, a ``SatcnnModel`` whose
capabilities come from the card: ``size_multiple`` and ``patch_size``; it has no fully
convolutional form, so class maps slide the exported patch classifier over the raster.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from satcnn.errors import ModelError
from satcnn.inference.model_card import read_card
from satcnn.inference.model_io import LoadedModel
from satcnn.models.base import SatcnnModel
from satcnn.models.normalize import Normalize, NormalizedModel

logger = logging.getLogger(__name__)

__all__ = ["OnnxNetwork", "load_onnx_model"]


def _session(path: Path, device: torch.device) -> Any:
    try:
        import onnxruntime as ort
    except ImportError:
        raise ModelError(
            "running an ONNX model needs onnxruntime (pip install onnxruntime, pinned in constraints.txt)",
            path,
        ) from None
    available = ort.get_available_providers()
    providers = ["CPUExecutionProvider"]
    if device.type == "cuda" and "CUDAExecutionProvider" in available:
        providers.insert(0, "CUDAExecutionProvider")
    elif device.type != "cpu":
        logger.warning("onnxruntime has no provider for %s here; running %s on the CPU", device, path.name)
    try:
        return ort.InferenceSession(str(path), providers=providers)
    except Exception as err:  # onnxruntime raises its own exception types for bad files
        detail = " ".join(str(err).split())[:300]
        raise ModelError(f"onnxruntime cannot load the model: {detail}", path) from None


class OnnxNetwork(SatcnnModel):
    """An ONNX model run by onnxruntime: float32 ``(N, C, H, W)`` in, its first output back as a tensor.

    Args:
        path: The ``.onnx`` file.
        size_multiple: Input sides must be multiples of this (from the card).
        patch_size: A classifier's patch side (from the card); None for segmenters.
        device: Where inputs come from and outputs go; onnxruntime uses CUDA when it has it.
    """

    def __init__(
        self,
        path: Path,
        size_multiple: int = 1,
        patch_size: int | None = None,
        device: torch.device | None = None,
    ) -> None:
        super().__init__()
        self.path = path
        self.size_multiple = size_multiple
        self.patch_size = patch_size
        self.session = _session(path, device or torch.device("cpu"))
        self.input_name = str(self.session.get_inputs()[0].name)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        feed = {self.input_name: x.detach().to("cpu", torch.float32).contiguous().numpy()}
        out = self.session.run(None, feed)[0]
        return torch.from_numpy(out).to(x.device)


def load_onnx_model(
    path: Path,
    uri: str,
    device: torch.device,
    source_run_id: str | None = None,
    registered: dict[str, str] | None = None,
) -> LoadedModel:
    """An ONNX export and its card as a :class:`LoadedModel` (see the module docstring).

    Raises:
        ModelError: no card beside the file, a card that does not describe this file, or a file
            that onnxruntime cannot load.
    """
    card, meta = read_card(path)
    hyper = card["properties"].get("mlm:hyperparameters") or {}
    network: SatcnnModel = OnnxNetwork(path, int(hyper.get("size_multiple") or 1), meta.patch_size, device)
    channels = len(meta.bands)
    identity = Normalize.from_stats([0.0] * channels, [1.0] * channels)  # the graph normalises
    module = NormalizedModel(network, identity).eval()
    logger.info("loaded ONNX %s model %s (%s) from %s", meta.task, meta.model.name, meta.weights_digest, path)
    return LoadedModel(module, meta, uri, path.resolve(), source_run_id, dict(registered or {}))
