"""Transfer learning as a schedule: train a new head on a frozen backbone, then fine-tune it all.

:class:`FreezeUnfreeze` is Lightning's ``BackboneFinetuning`` for satcnn models: the backbone is
everything outside the model's declared ``classifier_head`` (``SatcnnModel.classifier_head``:
``classifier`` for ``deepsat_cnn`` and ``lenet``, timm's classifier such as ``backbone.fc`` for the
classic networks), so no task needs a ``backbone`` attribute. Set it in a config::

    trainer:
      callbacks:
        - class_path: satcnn.tasks.FreezeUnfreeze
          init_args: {unfreeze_at_epoch: 3, lr_factor: 0.1}

Epochs ``0 .. unfreeze_at_epoch - 1`` train the head only: backbone parameters have
``requires_grad=False`` and stay out of the optimiser, and batch-norm layers of the backbone keep
their running statistics. At epoch ``unfreeze_at_epoch`` the backbone joins the optimiser as a new
parameter group whose learning rate is the head's current rate times ``lr_factor``; from then on
the task's schedule (cosine) drives both groups, so the backbone keeps that ratio to the head.
"""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import BackboneFinetuning
from torch import nn
from torch.optim import Optimizer

from satcnn.checks import require_at_least, require_in_range
from satcnn.errors import ConfigError
from satcnn.models.base import SatcnnModel
from satcnn.tasks.base import SatcnnTask

log = logging.getLogger(__name__)

__all__ = ["FreezeUnfreeze", "backbone_modules"]


def backbone_modules(model: nn.Module, head: tuple[str, ...]) -> list[nn.Module]:
    """The largest submodules of ``model`` that hold no module of ``head`` (qualified names)."""
    found: list[nn.Module] = []

    def visit(module: nn.Module, prefix: str) -> None:
        for name, child in module.named_children():
            qualified = f"{prefix}{name}"
            if qualified in head:
                continue
            if any(h.startswith(qualified + ".") for h in head):
                visit(child, qualified + ".")
            else:
                found.append(child)

    visit(model, "")
    return found


class FreezeUnfreeze(BackboneFinetuning):
    """Freeze the backbone for ``unfreeze_at_epoch`` epochs, then train it at ``lr_factor`` x the head lr.

    Args:
        unfreeze_at_epoch: Epochs trained with the backbone frozen (at least 1).
        lr_factor: The backbone's learning rate at unfreezing, as a fraction of the head's.
        train_bn: Train the backbone's batch-norm layers after unfreezing.
        require_pretrained: Refuse a model built without ``pretrained`` weights (a frozen random
            backbone teaches nothing).
    """

    def __init__(
        self,
        unfreeze_at_epoch: int = 5,
        lr_factor: float = 0.1,
        train_bn: bool = True,
        require_pretrained: bool = True,
    ) -> None:
        require_at_least("FreezeUnfreeze.unfreeze_at_epoch", unfreeze_at_epoch, 1)
        require_in_range("FreezeUnfreeze.lr_factor", lr_factor, 0, 1, low_open=True)
        super().__init__(
            unfreeze_backbone_at_epoch=unfreeze_at_epoch,
            backbone_initial_ratio_lr=lr_factor,
            train_bn=train_bn,
        )
        self.require_pretrained = require_pretrained

    @staticmethod
    def _network(pl_module: L.LightningModule) -> SatcnnModel:
        if not isinstance(pl_module, SatcnnTask):
            raise ConfigError(f"FreezeUnfreeze needs a satcnn task, not {type(pl_module).__name__}")
        return pl_module.model

    def _backbone(self, pl_module: L.LightningModule) -> list[nn.Module]:
        model = self._network(pl_module)
        head = model.classifier_head
        if not head:
            raise ConfigError(
                f"FreezeUnfreeze: model {type(model).__name__} declares no classifier head "
                "(SatcnnModel.classifier_head), so it has no backbone to freeze"
            )
        return backbone_modules(model, head)

    def freeze_before_training(self, pl_module: L.LightningModule) -> None:
        """Freeze the backbone (batch-norm statistics included) before the optimiser is built."""
        backbone = self._backbone(pl_module)
        if (
            self.require_pretrained
            and isinstance(pl_module, SatcnnTask)
            and not pl_module.model_kwargs.get("pretrained")
        ):
            raise ConfigError(
                "FreezeUnfreeze: the model has no pretrained weights; set "
                "model.init_args.model_kwargs.pretrained to a local weights file, a checkpoint or "
                "torchgeo weights (torchgeo:ResNet18_Weights.SENTINEL2_ALL_MOCO) "
                "(or require_pretrained: false)"
            )
        self.freeze(backbone, train_bn=False)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # BackboneFinetuning's own check wants a ``backbone`` attribute; ours is the model's split.
        super(BackboneFinetuning, self).on_fit_start(trainer, pl_module)

    def finetune_function(self, pl_module: L.LightningModule, epoch: int, optimizer: Optimizer) -> None:
        """At ``unfreeze_at_epoch``: unfreeze the backbone into a new parameter group of the optimiser."""
        if epoch != self.unfreeze_backbone_at_epoch:
            return
        head_lr = float(optimizer.param_groups[0]["lr"])
        lr = head_lr * self.backbone_initial_ratio_lr
        self.unfreeze_and_add_param_group(self._backbone(pl_module), optimizer, lr, train_bn=self.train_bn)
        self.previous_backbone_lr = lr
        _extend_schedulers(pl_module.trainer, optimizer, self.backbone_initial_ratio_lr)
        log.info("epoch %d: backbone unfrozen at lr %.3g (head %.3g)", epoch, lr, head_lr)


def _extend_schedulers(trainer: L.Trainer, optimizer: Optimizer, factor: float) -> None:
    """Give each scheduler of ``optimizer`` a base rate for the new group (torch zips them strictly)."""
    group = optimizer.param_groups[-1]
    for config in trainer.lr_scheduler_configs:
        scheduler: Any = config.scheduler
        if scheduler.optimizer is not optimizer or not hasattr(scheduler, "base_lrs"):
            continue
        base = float(scheduler.base_lrs[0]) * factor
        group.setdefault("initial_lr", base)
        while len(scheduler.base_lrs) < len(optimizer.param_groups):
            scheduler.base_lrs.append(base)
