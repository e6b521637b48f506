"""LightningModule for binary road segmentation (Residual U-Net, U-Net)."""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torchmetrics import MetricCollection

from satcnn.errors import ConfigError
from satcnn.models.normalize import ChannelsLast
from satcnn.tasks.base import SatcnnTask
from satcnn.tasks.road_metrics import RelaxedPrecisionRecall, RoadF1, RoadIoU

Stage = Literal["train", "val", "test"]


def soft_dice_loss(
    logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0, valid: torch.Tensor | None = None
) -> torch.Tensor:
    """1 - soft Dice of the road class over the batch (robust to the rarity of road pixels).

    ``valid`` (same shape, in {0, 1}) restricts the sums to its non-zero pixels.
    """
    prob = torch.sigmoid(logits)
    if valid is not None:
        prob, target = prob * valid, target * valid
    inter = (prob * target).sum()
    return 1 - (2 * inter + eps) / (prob.sum() + target.sum() + eps)


class SegmentationTask(SatcnnTask):
    """Segment roads: a one-channel logit map per patch, trained with BCE (+ Dice) or MSE.

    The paper's sigmoid is applied here (``predict_step``, metrics) and by inference, never
    inside the model, so the loss can use the numerically stable ``BCEWithLogits``.

    Logs IoU and F1 at 0.5, and on validation and test the relaxed precision and recall
    (slack ``rho`` pixels) with their breakeven point. Loss and metrics count only the pixels
    a batch's ``valid`` marks: valid image pixels (nodata and masked pixels are left out) and,
    on the overlapping validation/test grid, each scene pixel once. A batch without ``valid``
    counts every pixel. Keeps a few validation patches for an image / truth / prediction
    overlay figure.

    Args:
        model: registered model name (``resunet`` or ``unet``).
        model_kwargs: further model arguments.
        in_channels: input bands (4 for RGB+NIR, 3 for RGB, 1 for panchromatic).
        num_classes: must be 1 (road logit).
        loss: ``bce``, ``bce_dice`` (BCE + soft Dice) or ``mse`` (mean squared error of the
            road probability, the loss of Zhang, Liu & Wang 2017).
        pos_weight: weight of road pixels in BCE (road is rare; > 1 raises recall); not with ``mse``.
        rho: slack of the relaxed metrics, in pixels.
        overlay_samples: validation patches shown in the overlay figure.
        lr: learning rate.
        weight_decay: weight decay.
        optimizer: optimiser.
        scheduler: learning-rate schedule (``cosine``, ``step`` or ``none``).
        channels_last: channels-last memory format (``auto``: on CUDA only; see models.normalize).
        compile: compile the model with ``torch.compile`` (see ``SatcnnTask``).
        momentum: momentum of ``sgd``.
        lr_step_epochs: ``step`` schedule: epochs between two reductions of the rate.
        lr_gamma: ``step`` schedule: factor of each reduction.
    """

    task = "segmentation"
    headline = ("test_iou", "test IoU")
    monitor = "val_iou"
    monitor_mode = "max"

    def __init__(
        self,
        model: str = "resunet",
        model_kwargs: dict[str, Any] | None = None,
        in_channels: int = 4,
        num_classes: int = 1,
        loss: Literal["bce", "bce_dice", "mse"] = "bce_dice",
        pos_weight: float | None = None,
        rho: int = 3,
        overlay_samples: int = 4,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        optimizer: Literal["adamw", "adam", "sgd"] = "adamw",
        scheduler: Literal["cosine", "step", "none"] = "cosine",
        channels_last: ChannelsLast = "auto",
        compile: bool = False,
        momentum: float = 0.9,
        lr_step_epochs: int = 20,
        lr_gamma: float = 0.1,
    ) -> None:
        super().__init__(
            model,
            model_kwargs,
            in_channels,
            num_classes,
            lr,
            weight_decay,
            optimizer,
            scheduler,
            channels_last,
            compile,
            momentum=momentum,
            lr_step_epochs=lr_step_epochs,
            lr_gamma=lr_gamma,
        )
        if loss == "mse" and pos_weight is not None:
            raise ConfigError("pos_weight weights BCE; it has no effect with loss: mse (leave it null)")
        self.class_names = ["background", "road"]
        self.loss_kind = loss
        self.pos_weight = pos_weight
        self.overlay_samples = overlay_samples
        overlap = MetricCollection({"iou": RoadIoU(), "f1": RoadF1()})
        self.train_metrics = overlap.clone(prefix="train_")
        self.val_metrics = overlap.clone(prefix="val_")
        self.test_metrics = overlap.clone(prefix="test_")
        self.val_relaxed = RelaxedPrecisionRecall(rho=rho, thresholds=51)
        self.test_relaxed = RelaxedPrecisionRecall(rho=rho, thresholds=51)
        self.overlay: dict[str, dict[str, torch.Tensor]] = {}

    def loss(
        self, logits: torch.Tensor, mask: torch.Tensor, valid: torch.Tensor | None = None
    ) -> torch.Tensor:
        """BCE (+ soft Dice), or MSE of the probability, averaged over the ``valid`` pixels (all
        pixels when ``None``).

        A batch without a valid pixel gives 0 (with a gradient of 0), not NaN.
        """
        if self.loss_kind == "mse":
            error = (torch.sigmoid(logits) - mask) ** 2
            return error.mean() if valid is None else (error * valid).sum() / valid.sum().clamp(min=1)
        weight = None if self.pos_weight is None else torch.tensor(self.pos_weight, device=logits.device)
        if valid is None:
            loss = F.binary_cross_entropy_with_logits(logits, mask, pos_weight=weight)
        else:
            total = F.binary_cross_entropy_with_logits(
                logits, mask, weight=valid, pos_weight=weight, reduction="sum"
            )
            loss = total / valid.sum().clamp(min=1)
        if self.loss_kind == "bce_dice":
            loss = loss + soft_dice_loss(logits, mask, valid=valid)
        return loss

    def _step(self, batch: dict[str, Any], stage: Stage, batch_idx: int) -> torch.Tensor:
        x, mask, valid = batch["image"], batch["mask"], batch.get("valid")
        logits = self(x).float()
        loss = self.loss(logits, mask, valid)
        prob = torch.sigmoid(logits)
        n = x.shape[0]
        self.log(
            f"{stage}_loss", loss, batch_size=n, on_epoch=True, on_step=False, prog_bar=True, sync_dist=True
        )
        metrics = {"train": self.train_metrics, "val": self.val_metrics, "test": self.test_metrics}[stage]
        # Count valid pixels only: nodata is no evidence, and grid (val/test) windows overlap and
        # DDP pads shards with repeats, so each grid window counts the pixels it owns.
        if valid is None:
            metrics(prob, mask)
        else:
            metrics(prob, mask, valid=valid)
        self.log_dict(metrics, batch_size=n, on_epoch=True, on_step=False, prog_bar=stage != "train")
        if stage != "train":
            getattr(self, f"{stage}_relaxed").update(prob, mask, valid=valid)
            if batch_idx == 0:
                k = self.overlay_samples
                self.overlay[stage] = {
                    "image": x[:k].detach().cpu(),
                    "mask": mask[:k].detach().cpu(),
                    "prob": prob[:k].detach().cpu(),
                }
        return loss

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train", batch_idx)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._step(batch, "val", batch_idx)

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._step(batch, "test", batch_idx)

    def predict_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        return torch.sigmoid(self(batch["image"]))

    def _epoch_end(self, stage: Stage) -> None:
        relaxed = getattr(self, f"{stage}_relaxed")
        for name, value in relaxed.compute().items():
            self.log(f"{stage}_{name}", value)
        relaxed.reset()

    def on_validation_epoch_end(self) -> None:
        self._epoch_end("val")

    def on_test_epoch_end(self) -> None:
        self._epoch_end("test")

    def figures(self, stage: str) -> dict[str, Any]:
        """Image / truth / prediction overlays of the first ``stage`` batch."""
        from satcnn.tasks.figures import road_overlay_figure

        if stage not in self.overlay:
            return {}
        data = self.overlay[stage]
        return {f"road_overlays_{stage}": road_overlay_figure(data["image"], data["mask"], data["prob"])}
