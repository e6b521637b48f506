"""Small torch models with fixed random weights, for inference on raw digital numbers."""

from __future__ import annotations

import torch
from torch import nn


def seg_model(seed: int = 0) -> nn.Module:
    """Two stacked convs (receptive field radius 3) with fixed random weights, then sigmoid."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(4, 6, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(6, 1, 5, padding=2),
        nn.Sigmoid(),
    ).eval()


def scaled(model: nn.Module) -> nn.Module:
    """Divide raw digital numbers by 255 before ``model`` (keeps probabilities away from 0 and 1)."""

    class Scale(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x / 255.0

    return nn.Sequential(Scale(), model).eval()


def patch_classifier(patch: int, stride: int, k: int) -> nn.Module:
    """An FCN patch classifier: output (i, j) sees exactly input window (i*S, j*S, P, P)."""
    torch.manual_seed(4)
    return scaled(nn.Sequential(nn.Conv2d(4, 8, 3), nn.ReLU(), nn.Conv2d(8, k, patch - 2, stride=stride)))
