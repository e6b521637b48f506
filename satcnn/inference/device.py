"""Where and how inference runs the model: the torch device, autocast precision, compilation."""

from __future__ import annotations

import contextlib
import weakref
from typing import Any

import torch

from satcnn.errors import ConfigError

__all__ = ["autocast", "prepare_model", "sync", "torch_device"]


def torch_device(device: str | torch.device) -> torch.device:
    """``device`` as a ``torch.device``, checked to exist.

    Raises:
        ConfigError: A CUDA device is asked for but CUDA is not available.
    """
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available; use device='cpu'")
    return dev


_COMPILED: weakref.WeakSet[torch.nn.Module] = weakref.WeakSet()


def prepare_model(model: Any, device: torch.device, compile_model: bool = False) -> Any:
    """``model`` in eval mode on ``device``, compiled once in place when asked; other callables as is."""
    if isinstance(model, torch.nn.Module):
        model.eval()
        model.to(device)
        if compile_model and model not in _COMPILED:
            model.compile()  # in place: state_dict keys (and so the weights digest) are unchanged
            _COMPILED.add(model)
    return model


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    """``torch.autocast`` for a Lightning-style ``precision`` (``32``: no autocast)."""
    if precision == "32":
        return contextlib.nullcontext()
    dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}[precision]
    return torch.autocast(device.type, dtype=dtype)


def sync(device: torch.device) -> None:
    """Wait for ``device``'s queued work (CUDA), so timings measure it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
