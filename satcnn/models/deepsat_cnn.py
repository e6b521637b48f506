"""The DeepSat-style CNN for 28x28 multi-band patches (Basu et al. 2015)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn

from satcnn.models.adapt import load_pretrained
from satcnn.models.base import SatcnnModel
from satcnn.models.registry import register_model


def conv_bn_relu_pool(in_ch: int, out_ch: int) -> nn.Sequential:
    """conv3x3 (valid) - BN - ReLU - maxpool 2x2: one stage of the DeepSat CNN.

    Valid (unpadded) convolutions make the network exactly equivalent to its fully
    convolutional form: a window never sees zero padding that its neighbours would fill.
    """
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


@register_model("deepsat_cnn")
class DeepSatCNN(SatcnnModel):
    """Stacks of conv3x3 - BN - ReLU - maxpool, then flatten - dense - classes.

    The dense layers are expressed so that :meth:`as_fully_convolutional` can turn them
    into convolutions (FCN style) for dense class maps over large windows.

    Args:
        in_channels: input bands (4 for R, G, B, NIR).
        num_classes: output classes (6 for SAT-6, 4 for SAT-4).
        channels: filters of each conv stage; each stage halves the patch size.
        hidden: width of the dense layer.
        dropout: dropout before the classifier.
        patch_size: input patch size (28 for DeepSat).
        pretrained: local weights of a DeepSat CNN of the same layers (e.g. a satcnn ``.ckpt``
            trained on SAT-6); the classifier is kept only when the number of classes matches
            (SAT-6 -> SAT-4 gets a fresh 4-class head), see :func:`satcnn.models.adapt.load_pretrained`.
    """

    fully_convolutional = True  # output_stride 2 ** stages (set per instance)
    classifier_head = ("classifier",)

    def __init__(
        self,
        in_channels: int = 4,
        num_classes: int = 6,
        channels: Sequence[int] = (32, 64),
        hidden: int = 128,
        dropout: float = 0.25,
        patch_size: int = 28,
        pretrained: str | None = None,
    ) -> None:
        super().__init__()
        chans = [in_channels, *channels]
        self.features = nn.Sequential(*(conv_bn_relu_pool(a, b) for a, b in itertools.pairwise(chans)))
        self.patch_size = patch_size
        self.output_stride = 2 ** len(channels)
        with torch.no_grad():  # BN in training mode would need a batch > 1; restore the mode after
            shape = self.features.eval()(torch.zeros(1, in_channels, patch_size, patch_size)).shape
        self.features.train()
        self.feature_size = int(shape[-1])
        self.hidden = nn.Linear(chans[-1] * self.feature_size**2, hidden)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden, num_classes)
        if pretrained is not None:
            load_pretrained(self, pretrained, "features.0.0", self.classifier_head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x).flatten(1)
        x = self.dropout(torch.relu(self.hidden(x)))
        return self.classifier(x)

    def as_fully_convolutional(self) -> nn.Module:
        """The same network with dense layers as convolutions.

        On an input of H x W it returns logits of shape
        ``(N, classes, (H - patch) // s + 1, (W - patch) // s + 1)`` with
        ``s = output_stride = 2 ** stages``: the logits of every patch-sized window at that stride,
        equal (up to float rounding) to classifying each window on its own.
        """
        f = self.feature_size
        c = self.hidden.in_features // (f * f)
        hidden = nn.Conv2d(c, self.hidden.out_features, f)
        hidden.load_state_dict({"weight": self.hidden.weight.view(-1, c, f, f), "bias": self.hidden.bias})
        cls = nn.Conv2d(self.classifier.in_features, self.classifier.out_features, 1)
        cls.load_state_dict(
            {"weight": self.classifier.weight[:, :, None, None], "bias": self.classifier.bias}
        )
        return nn.Sequential(self.features, hidden, nn.ReLU(inplace=True), cls).eval()
