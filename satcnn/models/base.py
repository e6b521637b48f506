"""What a satcnn model can do, declared on one small base class instead of probed with ``getattr``.

Every registered model subclasses :class:`SatcnnModel` (``create_model`` refuses anything else),
so tasks and inference read its capabilities as typed attributes:

* ``size_multiple``: input height and width must be multiples of it (8 for a ResUNet with four
  levels, 16 for a U-Net of depth 4, 1 for the patch classifiers); :meth:`check_input` enforces it.
* ``patch_size``: the square patch a patch classifier was built for; None for dense networks.
* ``fully_convolutional`` and ``output_stride``: whether :meth:`as_fully_convolutional` gives a
  dense form, and how many input pixels lie between neighbouring outputs of that form (1 for the
  segmentation networks, whose output has the input's size; ``2 ** stages`` for the DeepSat CNN).

Like segmentation_models_pytorch's ``requires_divisible_input_shape``, these are class attributes
an instance may narrow from its arguments (a ResUNet's ``size_multiple`` follows its depth).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from satcnn.errors import ModelError

__all__ = ["SatcnnModel"]


class SatcnnModel(nn.Module):
    """Base of every registered model: an ``nn.Module`` with declared capabilities.

    Attributes:
        size_multiple: Input height and width must be multiples of this.
        patch_size: Side of the square patch a patch classifier takes; None for dense networks.
        fully_convolutional: :meth:`as_fully_convolutional` returns a dense form.
        output_stride: Input pixels between neighbouring outputs of the dense form.
        classifier_head: Qualified names of the submodules that form the classifier head (what
            transfer learning replaces and trains first; the rest is the backbone); empty when
            the model declares none.
        pretrained_record: Where pretrained weights came from (name, band map, their
            normalisation), recorded in the checkpoint; None for local files or no weights.
        input_stats: Per-band ``(mean, std)`` the task must normalise with instead of the
            training split's (set by ``pretrained_normalization="weights"``); None: the data's.
    """

    size_multiple: int = 1
    patch_size: int | None = None
    fully_convolutional: bool = False
    output_stride: int = 1
    classifier_head: tuple[str, ...] = ()
    pretrained_record: dict[str, Any] | None = None
    input_stats: tuple[list[float], list[float]] | None = None

    def as_fully_convolutional(self) -> nn.Module:
        """The dense form: on ``(N, C, H, W)`` it returns outputs on a grid of step ``output_stride``.

        Raises:
            ModelError: The model has none (``fully_convolutional`` is False).
        """
        raise ModelError(f"{type(self).__name__} has no fully convolutional form")

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ModelError unless ``x`` is a batch whose sides are multiples of ``size_multiple``.

        The message proposes the padded size, e.g. ``input 225x300 is not a multiple of 8; pad to
        232x304``.
        """
        name = type(self).__name__
        if x.ndim != 4:
            raise ModelError(f"{name} expects a batch (N, C, H, W), got a tensor of shape {tuple(x.shape)}")
        # The test stays on the (possibly symbolic) sizes: int() would pin them to the example's
        # under torch.export, and an exported program would lose its dynamic height and width.
        m = self.size_multiple
        if x.shape[-2] % m or x.shape[-1] % m:
            h, w = int(x.shape[-2]), int(x.shape[-1])
            ph, pw = -(-h // m) * m, -(-w // m) * m
            raise ModelError(
                f"{name}: input {h}x{w} is not a multiple of {m}; pad to {ph}x{pw} "
                "(or read windows whose size is a multiple of the model's size_multiple)"
            )
