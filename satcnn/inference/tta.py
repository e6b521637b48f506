"""Test-time augmentation: average a model's probabilities over flips or the 8 dihedral transforms.

``tta_mean(fn, x, kind)`` computes ``mean over t of t⁻¹(fn(t(x)))``, where ``t`` runs over

* ``none``: the identity (one pass, nothing averaged);
* ``flip``: the identity, the horizontal flip, the vertical flip and both (4 passes);
* ``d4``: the 8 symmetries of the square: the rotations by 0, 90, 180 and 270 degrees, each
  with and without a horizontal flip (8 passes).

``fn`` returns probabilities, never logits: the mean of probabilities is what is averaged. Its
spatial axes are the last two; a result without them (a per-patch ``(N, K)`` score) needs no
inverse. The transforms act on a whole window, so a window's core keeps its context on every
side under each of them, and tiled outputs stay seam-free (the engine applies TTA per window).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from satcnn.inference.options import TTA, TTA_KINDS

__all__ = ["TTA", "TTA_KINDS", "dihedral", "tta_mean"]

# (quarter turns, flip first) of each transform
_TRANSFORMS: dict[str, list[tuple[int, bool]]] = {
    "none": [(0, False)],
    "flip": [(0, False), (0, True), (2, True), (2, False)],  # id, h-flip, v-flip (= rot180 h-flip), both
    "d4": [(k, f) for f in (False, True) for k in range(4)],
}


def dihedral(kind: str) -> list[tuple[int, bool]]:
    """The transforms of ``kind`` as ``(quarter turns, horizontal flip first)`` pairs."""
    return list(_TRANSFORMS[kind])


def _forward(x: torch.Tensor, turns: int, flip: bool) -> torch.Tensor:
    if flip:
        x = x.flip(-1)
    return torch.rot90(x, turns, dims=(-2, -1)) if turns else x


def _inverse(y: torch.Tensor, turns: int, flip: bool) -> torch.Tensor:
    if turns:
        y = torch.rot90(y, -turns, dims=(-2, -1))
    return y.flip(-1) if flip else y


def tta_mean(
    fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, kind: str, spatial: bool = True
) -> torch.Tensor:
    """The mean of ``t⁻¹(fn(t(x)))`` over the transforms ``t`` of ``kind`` (see the module docstring).

    Args:
        fn: Maps ``(N, C, h, w)`` to probabilities; with ``spatial``, their last two axes are the
            (transformed) ``h`` and ``w`` or a grid aligned with them.
        x: The input batch.
        kind: ``none``, ``flip`` or ``d4``.
        spatial: Whether ``fn``'s result has spatial axes to transform back.
    """
    if kind == "none":
        return fn(x)
    total: torch.Tensor | None = None
    transforms = _TRANSFORMS[kind]
    for turns, flip in transforms:
        y = fn(_forward(x, turns, flip)).float()
        if spatial:
            y = _inverse(y, turns, flip)
        total = y if total is None else total + y
    assert total is not None
    return total / len(transforms)
