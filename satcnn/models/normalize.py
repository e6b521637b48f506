"""One normaliser for training and inference: raw digital numbers in, the network's input out.

Datamodules yield raw digital numbers. The training task and the inference model both turn them
into network input with the same :class:`Normalize` (``(x - mean) / std`` per band, then the
network's memory format), held under the same name: the task's state dict has
``normalize.mean``/``normalize.std`` beside the ``model.`` weights, and :class:`NormalizedModel`
(the inference form) has exactly that layout, so a checkpoint's entries load into either.

Memory format (``channels_last``): ``"auto"`` means channels-last on CUDA (what tensor cores
want). On CPU, training stays contiguous: oneDNN's channels-last convolution backward was 3-4x
slower than contiguous for small ResUNets and hung for ``filters: [4, 8, 16, 32]`` (torch 2.14.1).
Inference of a segmentation model runs channels-last on CPU too (:func:`inference_channels_last`):
its forward measured 1.34x (paper ResUNet, 1024 px windows, ``bench/results/infer.md``) and 1.42x
(ResUNet 16-128, ``bench/bench_precision.py``) the contiguous speed. Classifiers stay contiguous on
CPU (not measured).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, Literal, TypeVar

import torch
from torch import nn

from satcnn.errors import ConfigError, ModelError
from satcnn.models.base import SatcnnModel

__all__ = [
    "ChannelsLast",
    "Normalize",
    "NormalizedModel",
    "inference_channels_last",
    "resolve_channels_last",
    "use_channels_last",
]

#: ``True``, ``False`` or ``"auto"`` (channels-last on CUDA only).
ChannelsLast = Literal[True, False, "auto"]

M = TypeVar("M", bound=nn.Module)

MIN_STD = 1e-6


class Normalize(nn.Module):
    """``(x - mean) / std`` per band, returned in the network's memory format.

    Args:
        channels: Number of bands (statistics start at mean 0, std 1; see :meth:`set`).
        channels_last: Return channels-last tensors, for a network in that memory format.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, channels: int, channels_last: bool = False) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("std", torch.ones(channels))
        self.channels_last = channels_last

    @classmethod
    def from_stats(
        cls, mean: Sequence[float], std: Sequence[float], channels_last: bool = False
    ) -> Normalize:
        """A normaliser with the given per-band statistics (raw units)."""
        norm = cls(len(mean), channels_last)
        norm.set(mean, std)
        return norm

    def set(self, mean: Sequence[float], std: Sequence[float]) -> None:
        """Set the per-band statistics; ``std`` is clamped to at least 1e-6.

        Raises:
            ConfigError: The statistics do not have one value per band.
        """
        if len(mean) != self.mean.numel() or len(std) != self.std.numel():
            raise ConfigError(
                f"statistics for {len(mean)}/{len(std)} bands given to a {self.mean.numel()}-band model"
            )
        self.mean.copy_(torch.as_tensor(list(mean), dtype=self.mean.dtype))
        self.std.copy_(torch.as_tensor(list(std), dtype=self.std.dtype).clamp_min(MIN_STD))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean[:, None, None]) / self.std[:, None, None]
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


def resolve_channels_last(setting: ChannelsLast | None, device: torch.device | str) -> bool:
    """Whether to train channels-last: ``"auto"`` (or None) means on CUDA only (inference:
    :func:`inference_channels_last`)."""
    if setting is None or setting == "auto":
        return torch.device(device).type == "cuda"
    if not isinstance(setting, bool):
        raise ConfigError(f"channels_last must be true, false or auto, got {setting!r}")
    return setting


def inference_channels_last(setting: ChannelsLast | None, device: torch.device | str, task: str) -> bool:
    """Whether inference runs channels-last: ``"auto"`` (or None) means on CUDA, and on CPU for
    segmentation models (whose forward is faster so there; see the module docstring)."""
    if (setting is None or setting == "auto") and torch.device(device).type == "cpu":
        return task == "segmentation"
    return resolve_channels_last(setting, device)


def use_channels_last(model: nn.Module, normalize: Normalize, enabled: bool) -> None:
    """Put ``model``'s weights and ``normalize``'s output in one memory format, in place."""
    fmt = torch.channels_last if enabled else torch.contiguous_format
    model.to(memory_format=fmt)
    normalize.channels_last = enabled


class NormalizedModel(nn.Module, Generic[M]):
    """``model(normalize(x))``: takes raw digital numbers, as the training task does.

    Args:
        model: The network.
        normalize: Its normaliser (the statistics it was trained with).
    """

    def __init__(self, model: M, normalize: Normalize) -> None:
        super().__init__()
        self.normalize = normalize
        self.model = model

    @property
    def channels_last(self) -> bool:
        """Whether the network runs in channels-last memory format."""
        return self.normalize.channels_last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(self.normalize(x))

    def as_fully_convolutional(self) -> NormalizedModel[nn.Module]:
        """The same normaliser around the network's fully convolutional form.

        Raises:
            ModelError: The network has no fully convolutional form.
        """
        if not isinstance(self.model, SatcnnModel):
            raise ModelError(f"{type(self.model).__name__} is not a satcnn model (no declared capabilities)")
        fcn = self.model.as_fully_convolutional()
        use_channels_last(fcn, self.normalize, self.channels_last)
        return NormalizedModel(fcn, self.normalize).eval()
