"""Plain U-Net (Ronneberger, Fischer & Brox 2015) as a baseline for the Residual U-Net.

Differences from the original, as is usual for segmentation of tiles: same-padded
convolutions (output size equals input size, no cropping of skips) and BN after each
conv. Downsampling is maxpool 2x2; upsampling is a 2x2 transposed convolution that halves
the channels, as in the paper. The output is logits, like :class:`~satcnn.models.resunet.ResUNet`.

With the defaults (``base_filters=64, depth=4``) the network has 31.0M parameters
(31,038,209 for 4 bands, 31,037,633 for 3, ``num_classes=1``), the figure usually quoted
for the paper's network.
"""

from __future__ import annotations

import torch
from torch import nn

from satcnn.errors import ModelError
from satcnn.models.base import SatcnnModel
from satcnn.models.registry import register_model


def double_conv(in_ch: int, out_ch: int) -> nn.Sequential:
    """(conv3x3 same - BN - ReLU) twice."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


class UNetUp(nn.Module):
    """Transposed conv 2x2 (halves channels) - concatenate the skip - double conv."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_ch, out_ch, 2, stride=2)
        self.conv = double_conv(2 * out_ch, out_ch)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([self.up(x), skip], dim=1))


@register_model("unet")
class UNet(SatcnnModel):
    """U-Net returning per-pixel logits (N, num_classes, H, W).

    Args:
        in_channels: input bands.
        num_classes: output channels (1 for binary road masks).
        base_filters: filters of the first level; each level doubles them.
        depth: number of 2x downsamplings; H and W must be multiples of ``2 ** depth``.
    """

    #: Input height and width must be multiples of it (``2 ** depth``; 16 by default).
    size_multiple: int = 16
    fully_convolutional = True  # per-pixel logits at the input's size (output_stride 1)

    def __init__(
        self, in_channels: int = 4, num_classes: int = 1, base_filters: int = 64, depth: int = 4
    ) -> None:
        super().__init__()
        if in_channels < 1 or num_classes < 1 or base_filters < 1 or depth < 1:
            raise ModelError(
                "unet needs in_channels, num_classes, base_filters and depth >= 1, got "
                f"{in_channels}, {num_classes}, {base_filters}, {depth}"
            )
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.size_multiple = 2**depth
        chans = [base_filters * 2**i for i in range(depth + 1)]
        self.stem = double_conv(in_channels, chans[0])
        self.pool = nn.MaxPool2d(2)
        self.down = nn.ModuleList(double_conv(chans[i], chans[i + 1]) for i in range(depth))
        self.up = nn.ModuleList(UNetUp(chans[i + 1], chans[i]) for i in reversed(range(depth)))
        self.head = nn.Conv2d(chans[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, num_classes, H, W) for an input (N, in_channels, H, W)."""
        self.check_input(x)
        x = self.stem(x)
        skips = [x]
        for block in self.down:
            x = block(self.pool(x))
            skips.append(x)
        skips.pop()
        for block in self.up:
            x = block(x, skips.pop())
        return self.head(x)

    def as_fully_convolutional(self) -> UNet:
        """The network itself: it already maps any (multiple-sized) input to per-pixel logits."""
        return self
