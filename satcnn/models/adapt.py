"""Transfer learning without downloads: read local weights, adapt the input bands, freeze.

Weights come from a local file only (the training machines have no internet):

* a plain state dict (``torch.save(model.state_dict())``, ``.pth``/``.pt``/``.bin``), e.g. timm or
  torchvision ImageNet weights downloaded elsewhere;
* a ``.safetensors`` file (the format of timm weights on the Hugging Face Hub);
* a satcnn checkpoint (``.ckpt`` with the ``satcnn`` block): its ``model.``-prefixed weights.

Files are read with ``torch.load(weights_only=True)`` (or safetensors): pickled code is refused.

Extra bands (the rule for RGB weights on R, G, B, NIR patches, see :func:`adapt_input_conv`):
the first convolution keeps the source's filters for the first bands in order (satcnn's band
order is red, green, blue, nir), each extra band gets the **mean** of the source filters, and all
filters are scaled by ``source_bands / bands`` (3/4 for RGB -> RGBN).

Why the mean and not a copy of red (timm's ``adapt_input_conv`` repeats R, G, B cyclically): NIR
is not a fourth visible colour. Vegetation is dark in red and bright in NIR, so a copied red
filter would make the stem read NIR as "more red"; the mean filter is a neutral brightness
detector that training then specialises, and the rule does not depend on what the extra band
is (NIR, SWIR, elevation). Why the scale: with per-band standardised inputs (the task normalises
each band) that are correlated, the sum over ``C`` bands of ``w * x`` grows like ``C``; scaling by
``3 / C`` keeps the stem's activations, and so the pretrained batch-norm statistics that follow,
at the magnitude the RGB network was trained with.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from satcnn.errors import ModelError
from satcnn.models.checkpoint import CHECKPOINT_KEY, weights_of
from satcnn.models.torchgeo_weights import is_torchgeo

log = logging.getLogger(__name__)

__all__ = [
    "LoadReport",
    "adapt_input_conv",
    "freeze_all_but",
    "load_pretrained",
    "load_state",
    "read_state_dict",
]

_WRAPPER_PREFIXES = ("module.", "backbone.", "model.")  # DataParallel, satcnn wrappers, checkpoints
_SHOW = 5  # keys named in an error message


@dataclass
class LoadReport:
    """What :func:`load_pretrained` did with each weight of the model."""

    loaded: list[str] = field(default_factory=list)
    adapted: list[str] = field(default_factory=list)
    reinitialised: list[str] = field(default_factory=list)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a local weights file (state dict, safetensors or satcnn checkpoint).

    Raises:
        ModelError: The file is missing, unreadable, holds pickled objects, or holds no tensors.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise ModelError(
            "pretrained weights file not found; give a local .pth/.safetensors/.ckpt file "
            "(no downloads are made: fetch timm/torchvision weights on a connected machine first)",
            p,
        )
    if p.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return dict(load_file(str(p), device="cpu"))
        except (SafetensorError, OSError) as err:
            raise ModelError(f"not a readable safetensors file: {err}", p) from None
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).splitlines()[0]
        raise ModelError(
            f"refused: the file holds pickled objects, not only weights ({first}); "
            "re-save it with torch.save(model.state_dict(), path)",
            p,
        ) from None
    except (RuntimeError, OSError, EOFError) as err:
        raise ModelError(f"not a readable PyTorch weights file: {err}", p) from None
    return _tensors_of(obj, p)


def _tensors_of(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping) and CHECKPOINT_KEY in obj and isinstance(obj.get("state_dict"), Mapping):
        name = obj[CHECKPOINT_KEY].get("model", {}).get("name", "?")
        state = weights_of(obj["state_dict"])
        log.info("%s: satcnn checkpoint of a %r model, %d weight tensors", path, name, len(state))
    elif isinstance(obj, Mapping) and all(isinstance(v, torch.Tensor) for v in obj.values()):
        state = dict(obj)
    elif isinstance(obj, Mapping) and isinstance(
        obj.get("state_dict"), Mapping
    ):  # Lightning / timm train ckpt
        state = dict(obj["state_dict"])
    else:
        state = {}
    state = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not state:
        raise ModelError("no weight tensors found (expected a state dict or a satcnn checkpoint)", path)
    return state


def adapt_input_conv(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """First-convolution weights ``(O, S, k, k)`` for ``in_channels`` bands (module docstring rule).

    * ``C == S``: unchanged.
    * ``C > S``: the ``S`` source filters, then ``C - S`` copies of their mean; all times ``S / C``.
    * ``1 < C < S``: the first ``C`` source filters, times ``S / C``.
    * ``C == 1``: the sum of the source filters (greyscale).
    """
    if weight.ndim != 4:
        raise ModelError(f"cannot adapt a first convolution of shape {tuple(weight.shape)} (expected 4-D)")
    s = weight.shape[1]
    c = in_channels
    if c == s:
        return weight
    w = weight.float()
    if c == 1:
        out = w.sum(dim=1, keepdim=True)
    elif c > s:
        extra = w.mean(dim=1, keepdim=True).expand(-1, c - s, -1, -1)
        out = torch.cat([w, extra], dim=1) * (s / c)
    else:
        out = w[:, :c] * (s / c)
    return out.to(weight.dtype)


def _strip_wrappers(src: dict[str, torch.Tensor], target: Iterable[str]) -> dict[str, torch.Tensor]:
    """Drop wrapper prefixes (``module.``, ``backbone.``) that the source has and the target lacks."""
    keys = set(target)
    for _ in range(len(_WRAPPER_PREFIXES)):
        if set(src) & keys:
            break
        for prefix in _WRAPPER_PREFIXES:
            if all(k.startswith(prefix) for k in src):
                src = {k.removeprefix(prefix): v for k, v in src.items()}
                break
        else:
            break
    return src


def _under(key: str, prefixes: Sequence[str]) -> bool:
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def load_pretrained(
    model: nn.Module,
    path: str | Path,
    first_conv: str,
    head: Sequence[str],
) -> LoadReport:
    """Load local weights into ``model``, adapting the input bands and dropping a mismatched head.

    Args:
        model: The network to fill (its own input bands and classes already set).
        path: Weights file (see :func:`read_state_dict`).
        first_conv: Qualified name of the input convolution (its weight goes through
            :func:`adapt_input_conv` if the band counts differ).
        head: Qualified names of the classifier modules; their weights are kept only if the
            shapes match (same number of classes), otherwise left at their fresh initialisation.

    Returns:
        Which keys were loaded, adapted, and re-initialised.

    Raises:
        ModelError: The file is missing or unreadable, or holds another architecture (the message
            names a few missing and unexpected keys).
    """
    if is_torchgeo(str(path)):
        raise ModelError(
            f"{type(model).__name__} cannot start from torchgeo weights ({path}): they are for timm "
            "backbones (model: resnet18, resnet50, or timm with a ViT backbone); give a local weights file"
        )
    p = Path(path)
    return load_state(model, read_state_dict(p), p, first_conv, head)


def load_state(
    model: nn.Module,
    state: dict[str, torch.Tensor],
    source: str | Path,
    first_conv: str,
    head: Sequence[str],
) -> LoadReport:
    """Load the tensors ``state`` into ``model`` as :func:`load_pretrained` does (``source`` names them).

    Raises:
        ModelError: ``state`` holds another architecture.
    """
    p = Path(source) if not isinstance(source, Path) else source
    target = model.state_dict()
    src = _strip_wrappers(state, target)
    missing = [k for k in target if k not in src and not _under(k, head)]
    unexpected = [k for k in src if k not in target and not _under(k, head)]
    conv_key = f"{first_conv}.weight"
    wrong_shape: list[str] = []
    report = LoadReport()
    new: dict[str, torch.Tensor] = {}
    for key, value in src.items():
        if key not in target:
            continue
        want = target[key]
        if value.shape == want.shape:
            new[key] = value.to(want.dtype)
            report.loaded.append(key)
        elif (
            key == conv_key
            and value.ndim == 4
            and value.shape[0] == want.shape[0]
            and value.shape[2:] == want.shape[2:]
        ):
            new[key] = adapt_input_conv(value, want.shape[1]).to(want.dtype)
            report.adapted.append(key)
            log.info("%s: %s adapted from %d to %d bands", p.name, key, value.shape[1], want.shape[1])
        elif _under(key, head):
            report.reinitialised.append(key)
        else:
            wrong_shape.append(f"{key} {tuple(value.shape)} vs {tuple(want.shape)}")
    if missing or unexpected or wrong_shape:
        parts = []
        if missing:
            parts.append(
                f"{len(missing)} of the model's weights are missing (e.g. {', '.join(missing[:_SHOW])})"
            )
        if unexpected:
            parts.append(f"{len(unexpected)} are unexpected (e.g. {', '.join(unexpected[:_SHOW])})")
        if wrong_shape:
            parts.append(f"{len(wrong_shape)} have other shapes (e.g. {'; '.join(wrong_shape[:_SHOW])})")
        raise ModelError(
            f"these weights are not for a {type(model).__name__} of this architecture: {'; '.join(parts)}. "
            "Give weights saved from the same backbone",
            p,
        )
    report.reinitialised += [k for k in target if k not in src and _under(k, head)]
    model.load_state_dict(new, strict=False)
    log.info(
        "%s: loaded %d weight tensors, adapted %s, re-initialised the head %s",
        p.name,
        len(report.loaded),
        report.adapted or "none",
        report.reinitialised or "(none: its shape matched)",
    )
    return report


def freeze_all_but(model: nn.Module, head: Sequence[str]) -> int:
    """Set ``requires_grad=False`` on every parameter outside ``head``; returns how many were frozen.

    Frozen parameters get no gradient, so the task's optimiser leaves them alone without a change;
    batch-norm statistics are kept fixed by the models' ``train()`` (see ``classic.py``).
    """
    frozen = 0
    for name, param in model.named_parameters():
        if not _under(name.rsplit(".", 1)[0], head):
            param.requires_grad_(False)
            frozen += param.numel()
    return frozen
