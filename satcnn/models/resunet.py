"""Residual U-Net for road extraction (Zhang, Liu & Wang 2017, arXiv:1711.10684).

Layout (Table 1 of the paper, filters ``(64, 128, 256, 512)``)::

    level 1   plain conv3x3(64) - BN - ReLU - conv3x3(64)         + shortcut    H
    level 2   unit(128, stride 2)                                               H/2
    level 3   unit(256, stride 2)                                               H/4
    bridge    unit(512, stride 2)                                               H/8
    level 5   up x2 - concat level 3 - unit(256)                                H/4
    level 6   up x2 - concat level 2 - unit(128)                                H/2
    level 7   up x2 - concat level 1 - unit(64)                                 H
    output    conv1x1(num_classes)

A unit is a pre-activation residual unit (He et al. 2016): BN - ReLU - conv3x3 (stride s) -
BN - ReLU - conv3x3, added to a shortcut. Downsampling is the stride of the first conv, not
pooling. The very first unit skips the leading BN - ReLU, since it would act on raw
(normalised) input bands.

Choices where the paper is silent, following the authors' Keras reference implementation
and its common ports:

- Shortcut: conv1x1 (with the unit's stride) followed by BN, in every unit. The paper's
  figure draws an identity addition, but no unit keeps its channel count (the decoder units
  take the concatenation), so every shortcut must project.
- Upsampling: nearest neighbour x2 (Keras ``UpSampling2D`` default).
- Convolutions have no bias, since each feeds a BN (directly, or through the addition with
  the BN'd shortcut, whose shift absorbs it); only the final conv1x1 has one.
- The output is **logits**: the paper's sigmoid is left to the loss
  (``BCEWithLogitsLoss``, numerically stable) and to inference (``torch.sigmoid``).

Parameter count (``num_classes=1``): 8,219,585 for 3 input bands and 8,220,225 for 4,
against the paper's 7.8M. The difference is the projection shortcuts: 433,088 parameters
(3 bands), 258,944 of them in the three decoder units, whose inputs are 768, 384 and 192
channels wide. Without them the network has 7,786,497 parameters, i.e. the paper's 7.8M,
so the paper apparently counts the shortcuts as identities.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from satcnn.errors import ModelError
from satcnn.models.base import SatcnnModel
from satcnn.models.registry import register_model

logger = logging.getLogger(__name__)


class ResidualUnit(nn.Module):
    """Pre-activation residual unit: [BN - ReLU] - conv3x3/s - BN - ReLU - conv3x3, plus shortcut.

    Args:
        in_ch: input channels.
        out_ch: output channels.
        stride: stride of the first conv and of the shortcut (2 to downsample).
        preactivate: apply BN - ReLU before the first conv (False only for the first unit).
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, preactivate: bool = True) -> None:
        super().__init__()
        self.pre: nn.Module = (
            nn.Sequential(nn.BatchNorm2d(in_ch), nn.ReLU(inplace=True)) if preactivate else nn.Identity()
        )
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.mid = nn.Sequential(nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.shortcut = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False),
            nn.BatchNorm2d(out_ch),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The pre-activation must not run in place on x: the shortcut still needs it.
        y = self.conv1(self.pre(x))
        y = self.conv2(self.mid(y))
        return y + self.shortcut(x)


class ResUNetEncoder(nn.Module):
    """Levels 1-3 and the bridge; returns the skip features and the bridge output."""

    def __init__(self, in_channels: int, filters: Sequence[int]) -> None:
        super().__init__()
        chans = [in_channels, *filters]
        self.units = nn.ModuleList(
            ResidualUnit(chans[i], chans[i + 1], stride=1 if i == 0 else 2, preactivate=i > 0)
            for i in range(len(filters))
        )

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        skips: list[torch.Tensor] = []
        for unit in self.units:
            x = unit(x)
            skips.append(x)
        return skips[:-1], skips[-1]


class ResUNetDecoder(nn.Module):
    """Upsample x2 (nearest) - concatenate the skip - residual unit, once per encoder level."""

    def __init__(self, filters: Sequence[int]) -> None:
        super().__init__()
        rev = list(filters)[::-1]  # (512, 256, 128, 64)
        self.units = nn.ModuleList(ResidualUnit(rev[i] + rev[i + 1], rev[i + 1]) for i in range(len(rev) - 1))

    def forward(self, skips: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        for unit, skip in zip(self.units, reversed(skips), strict=True):
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            x = unit(torch.cat([x, skip], dim=1))
        return x


@register_model("resunet")
class ResUNet(SatcnnModel):
    """Residual U-Net (Zhang et al. 2017) returning per-pixel logits.

    Apply ``torch.sigmoid`` to the output for road probabilities; train with
    ``BCEWithLogitsLoss``. Input height and width must be multiples of
    :attr:`size_multiple` (8 for the paper's four levels).

    Args:
        in_channels: input bands (4 for R, G, B, NIR; 3 for RGB as in the paper).
        num_classes: output channels (1 for binary road masks).
        filters: filters of encoder levels 1..L-1 and the bridge (the last entry); the
            decoder mirrors them. The paper's network is ``(64, 128, 256, 512)``.
    """

    #: Total stride: input height and width must be multiples of it (instance value
    #: ``2 ** (len(filters) - 1)``; 8 for the default filters).
    size_multiple: int = 8
    fully_convolutional = True  # per-pixel logits at the input's size (output_stride 1)

    def __init__(
        self,
        in_channels: int = 4,
        num_classes: int = 1,
        filters: Sequence[int] = (64, 128, 256, 512),
    ) -> None:
        super().__init__()
        filters = [int(f) for f in filters]
        if in_channels < 1 or num_classes < 1:
            raise ModelError(
                f"resunet needs in_channels >= 1 and num_classes >= 1, got {in_channels}, {num_classes}"
            )
        if len(filters) < 2 or min(filters) < 1:
            raise ModelError(
                f"resunet needs at least two positive filter counts (levels + bridge), got {filters}"
            )
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.size_multiple = 2 ** (len(filters) - 1)
        self.encoder = ResUNetEncoder(in_channels, filters)
        self.decoder = ResUNetDecoder(filters)
        self.head = nn.Conv2d(filters[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, num_classes, H, W) for an input (N, in_channels, H, W)."""
        self.check_input(x)
        skips, bridge = self.encoder(x)
        return self.head(self.decoder(skips, bridge))

    def as_fully_convolutional(self) -> ResUNet:
        """The network itself: it already maps any (multiple-sized) input to per-pixel logits."""
        return self
