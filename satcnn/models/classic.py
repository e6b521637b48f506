"""Classic CNN classifiers for DeepSat-style 28x28 multi-band patches, with transfer learning.

Registered names (``create_model(name, in_channels=4, num_classes=6, ...)``):

* ``lenet``: LeNet-5 (hand-written: no library ships it), valid 5x5 convolutions, so it also
  has an exact fully convolutional form like ``deepsat_cnn``.
* ``timm``: any timm model, ``backbone="<timm name>"`` (or ``"alexnet"``: torchvision's, timm has none).
* aliases of ``timm`` with a fixed backbone: ``alexnet``, ``vgg11``, ``vgg16``, ``inception_v3``,
  ``resnet18``, ``resnet50``, ``xception`` (timm ``legacy_xception``, Chollet's original),
  ``seresnet18``, ``senet154``. Other timm names (``inception_v4``, ``inception_resnet_v2``,
  ``xception41``...) work through ``timm`` with ``backbone``.

Small patches: ImageNet networks downsample by 32, so a 28x28 patch would shrink to 1x1 before
the last stage (and Inception, AlexNet refuse inputs under 75 and 63 pixels). Patches are
therefore resized (bilinear) to ``input_size`` inside ``forward``: by default 64 (a 2x2 last
feature map), 75 for the Inception family and ``patch_size`` when that is larger. Resizing, rather
than re-striding each stem, works the same for every backbone and keeps pretrained stems whole;
the cost is compute (a resnet18 at 64x64 is about 5x a native 28x28 stem).

Transfer learning (timm is always built with ``pretrained=False``):
``pretrained="path/to/weights"`` loads a local state dict, safetensors file or satcnn checkpoint,
adapts the first convolution to the input bands (rule in :mod:`satcnn.models.adapt`) and keeps a
fresh head when the number of classes differs. ``pretrained="torchgeo:<Enum>.<MEMBER>"`` takes
torchgeo weights pretrained on satellite imagery (timm ResNet/ViT of the same backbone), fetched
by torchgeo itself, with the first convolution taken by band meaning
(:mod:`satcnn.models.torchgeo_weights`). ``freeze_backbone=True`` trains only the head: the other
parameters get ``requires_grad=False`` and stay in eval mode (fixed batch-norm statistics, no
dropout).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Sequence
from typing import Any, Literal, Self

import torch
import torch.nn.functional as F
from torch import nn

from satcnn.errors import ModelError
from satcnn.models.adapt import freeze_all_but, load_pretrained, load_state
from satcnn.models.base import SatcnnModel
from satcnn.models.registry import register_model
from satcnn.models.torchgeo_weights import TorchgeoWeights, is_torchgeo

log = logging.getLogger(__name__)

__all__ = ["ALIASES", "ClassicClassifier", "LeNet", "default_input_size"]

# satcnn name -> backbone (a timm name, or "alexnet" for torchvision's)
ALIASES: dict[str, str] = {
    "alexnet": "alexnet",
    "vgg11": "vgg11",
    "vgg16": "vgg16",
    "inception_v3": "inception_v3",
    "resnet18": "resnet18",
    "resnet50": "resnet50",
    "xception": "legacy_xception",
    "seresnet18": "seresnet18",
    "senet154": "senet154",
}
MIN_INPUT_SIZE = 64
DEFAULT_BANDS = ["red", "green", "blue", "nir"]  # satcnn's band order (DeepSat, scenes)
_MIN_INPUT_BY_FAMILY = {"inception": 75}  # timm Inception v3/v4/ResNet-v2 stems need >= 75 pixels


def default_input_size(backbone: str, patch_size: int) -> int:
    """The side patches are resized to before ``backbone``: at least 64 (75 for Inception)."""
    floor = next((v for k, v in _MIN_INPUT_BY_FAMILY.items() if backbone.startswith(k)), MIN_INPUT_SIZE)
    return max(patch_size, floor)


class _TransferModel(SatcnnModel):
    """Shared transfer-learning plumbing: ``first_conv``/``head`` names, loading, freezing."""

    first_conv: str
    head: tuple[str, ...]
    frozen: bool = False
    loads_torchgeo: bool = False  # whether the constructor loads ``torchgeo:`` weights itself
    _net_name: str = ""  # the submodule holding first_conv and head ("" for the model itself)

    def _transfer(self, net_name: str, pretrained: str | None, freeze_backbone: bool) -> None:
        net = self.get_submodule(net_name)
        if pretrained is not None and not (self.loads_torchgeo and is_torchgeo(pretrained)):
            load_pretrained(net, pretrained, self.first_conv, self.head)
        if freeze_backbone:
            if pretrained is None:
                log.warning(
                    "freeze_backbone without pretrained weights: only a head on random features trains"
                )
            n = freeze_all_but(net, self.head)
            log.info("froze %d backbone parameters; the head %s trains", n, list(self.head))
        self.frozen = freeze_backbone
        self._net_name = net_name
        self.classifier_head = tuple(f"{net_name}.{h}" if net_name else h for h in self.head)

    def train(self, mode: bool = True) -> Self:
        super().train(mode)
        if self.frozen and mode:
            net = self.get_submodule(self._net_name)
            net.eval()  # frozen batch-norm statistics and no dropout outside the head
            for name in self.head:
                net.get_submodule(name).train()
        return self


@register_model("lenet")
class LeNet(_TransferModel):
    """LeNet-5 (LeCun et al. 1998) for multi-band patches, with ReLU and max pooling.

    conv5x5 (valid) - ReLU - maxpool 2, twice, then dense 120 - 84 - classes. Valid
    convolutions make :meth:`as_fully_convolutional` exact (stride 4), as for ``deepsat_cnn``.
    The 1998 network used tanh and trainable average "subsampling"; ReLU and max pooling are
    the usual modern form and train faster.

    Args:
        in_channels: input bands.
        num_classes: output classes.
        channels: filters of the two convolutions.
        hidden: widths of the two dense layers.
        dropout: dropout before the classifier.
        patch_size: input patch size (at least 16).
        pretrained: local weights of a LeNet (e.g. a satcnn ``.ckpt`` trained on SAT-4).
        freeze_backbone: train only the classifier.
    """

    first_conv = "features.0"
    head = ("classifier",)
    fully_convolutional = True  # output_stride 2 ** stages (set per instance)

    def __init__(
        self,
        in_channels: int = 4,
        num_classes: int = 6,
        channels: Sequence[int] = (6, 16),
        hidden: Sequence[int] = (120, 84),
        dropout: float = 0.0,
        patch_size: int = 28,
        pretrained: str | None = None,
        freeze_backbone: bool = False,
    ) -> None:
        super().__init__()
        chans = [in_channels, *channels]
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(chans):
            layers += [nn.Conv2d(a, b, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
        self.features = nn.Sequential(*layers)
        self.patch_size = patch_size
        self.output_stride = 2 ** len(channels)
        size = patch_size
        for _ in channels:
            size = (size - 4) // 2
        if size < 1:
            raise ModelError(f"lenet: a {patch_size}x{patch_size} patch is too small (at least 16 pixels)")
        self.feature_size = size
        widths = [chans[-1] * size * size, *hidden]
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(widths))
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(widths[-1], num_classes)
        self._transfer("", pretrained, freeze_backbone)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x).flatten(1)
        for layer in self.hidden:
            x = torch.relu(layer(x))
        return self.classifier(self.dropout(x))

    def as_fully_convolutional(self) -> nn.Module:
        """The same network with dense layers as convolutions (logits of every window at stride 4)."""
        f = self.feature_size
        layers: list[nn.Module] = [self.features]
        for i, dense in enumerate([*self.hidden, self.classifier]):
            k = f if i == 0 else 1
            conv = nn.Conv2d(dense.in_features // (k * k), dense.out_features, k)
            conv.load_state_dict({"weight": dense.weight.view(conv.weight.shape), "bias": dense.bias})
            layers.append(conv)
            if i < len(self.hidden):
                layers.append(nn.ReLU(inplace=True))
        return nn.Sequential(*layers).eval()


def _alexnet(in_channels: int, num_classes: int) -> tuple[nn.Module, str, tuple[str, ...]]:
    from torchvision.models import alexnet

    net = alexnet(weights=None, num_classes=num_classes)
    net.features[0] = nn.Conv2d(in_channels, 64, kernel_size=11, stride=4, padding=2)
    return net, "features.0", ("classifier.6",)


def _timm(
    backbone: str, in_channels: int, num_classes: int, **kwargs: Any
) -> tuple[nn.Module, str, tuple[str, ...]]:
    import timm

    if not timm.is_model(backbone):
        raise ModelError(
            f"unknown timm backbone {backbone!r}; list the choices with timm.list_models('*{backbone[:4]}*')"
        )
    net = timm.create_model(
        backbone, pretrained=False, in_chans=in_channels, num_classes=num_classes, **kwargs
    )
    cfg: dict[str, Any] = dict(getattr(net, "pretrained_cfg", None) or {})
    first, head = cfg.get("first_conv"), cfg.get("classifier")
    if not isinstance(first, str) or head is None:
        raise ModelError(f"timm backbone {backbone!r} does not name its first convolution and classifier")
    return net, first, (head,) if isinstance(head, str) else tuple(head)


@register_model("timm")
class ClassicClassifier(_TransferModel):
    """An ImageNet classifier (timm, or torchvision's AlexNet) on multi-band patches.

    Patches are resized (bilinear) to ``input_size`` before the backbone (module docstring).

    Args:
        backbone: a timm model name (``timm.list_models()``) or ``"alexnet"`` (torchvision).
        in_channels: input bands.
        num_classes: output classes.
        patch_size: input patch size.
        input_size: side the patches are resized to; default :func:`default_input_size`.
        drop_rate: dropout before the classifier (timm backbones only).
        pretrained: local weights file of the same backbone (timm/torchvision state dict,
            ``.safetensors`` or satcnn ``.ckpt``); RGB weights are adapted to ``in_channels``.
            Or ``"torchgeo:<Enum>.<MEMBER>"`` (e.g. ``torchgeo:ResNet18_Weights.SENTINEL2_ALL_MOCO``):
            torchgeo weights, first convolution taken by band meaning
            (:mod:`satcnn.models.torchgeo_weights`).
        freeze_backbone: train only the classifier head.
        bands: the input bands by common name, in order, for torchgeo weights; default
            satcnn's ``red, green, blue, nir`` (the first ``in_channels`` of them).
        pretrained_normalization: with torchgeo weights, normalise inputs by the training
            split's statistics (``"data"``) or by the weights' own (``"weights"``: for data in
            the weights' units, e.g. Sentinel-2 L1C digital numbers).
    """

    loads_torchgeo = True

    def __init__(
        self,
        backbone: str = "resnet18",
        in_channels: int = 4,
        num_classes: int = 6,
        patch_size: int = 28,
        input_size: int | None = None,
        drop_rate: float = 0.0,
        pretrained: str | None = None,
        freeze_backbone: bool = False,
        bands: Sequence[str] | None = None,
        pretrained_normalization: Literal["data", "weights"] = "data",
    ) -> None:
        super().__init__()
        if backbone == "alexnet":
            self.backbone, self.first_conv, self.head = _alexnet(in_channels, num_classes)
        else:
            self.backbone, self.first_conv, self.head = _timm(
                backbone, in_channels, num_classes, drop_rate=drop_rate
            )
        self.backbone_name = backbone
        self.patch_size = patch_size
        self.input_size = input_size or default_input_size(backbone, patch_size)
        if pretrained_normalization not in ("data", "weights"):
            raise ModelError(
                f"pretrained_normalization must be data or weights, got {pretrained_normalization!r}"
            )
        if is_torchgeo(pretrained):
            self._load_torchgeo(str(pretrained), in_channels, bands, pretrained_normalization)
        self._transfer("backbone", pretrained, freeze_backbone)

    def _load_torchgeo(
        self, name: str, in_channels: int, bands: Sequence[str] | None, normalization: str
    ) -> None:
        names = list(bands) if bands is not None else DEFAULT_BANDS[:in_channels]
        if len(names) != in_channels:
            raise ModelError(
                f"{in_channels} input bands need {in_channels} band names to map torchgeo weights, "
                f"got {names}; set model_kwargs.bands (e.g. [red, green, blue, nir])"
            )
        weights = TorchgeoWeights(name, names)
        weights.check_architecture(self.backbone_name)
        load_state(self.backbone, weights.state_dict(self.first_conv), name, self.first_conv, self.head)
        self.pretrained_record = weights.record(normalization)
        if normalization == "weights":
            self.input_stats = weights.model_normalization()
            if self.input_stats is None:
                raise ModelError(
                    f"torchgeo weights {name!r} declare no normalisation; use pretrained_normalization: data"
                )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.input_size
        if x.shape[-2:] != (s, s):
            x = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False)
        return self.backbone(x)


def _alias(name: str, backbone: str) -> Callable[..., ClassicClassifier]:
    def factory(in_channels: int = 4, num_classes: int = 6, **kwargs: Any) -> ClassicClassifier:
        return ClassicClassifier(backbone, in_channels, num_classes, **kwargs)

    factory.__name__ = name
    factory.__doc__ = (
        f"``timm`` with ``backbone={backbone!r}``; other arguments as :class:`ClassicClassifier`."
    )
    return factory


for _name, _backbone in ALIASES.items():
    register_model(_name)(_alias(_name, _backbone))
