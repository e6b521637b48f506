"""LightningModule for patch classification (DeepSat SAT-4 / SAT-6 and classic backbones)."""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)

from satcnn.data.protocol import ClassData, require_class_data, trainer_datamodule
from satcnn.errors import ConfigError
from satcnn.models.normalize import ChannelsLast
from satcnn.tasks.base import SatcnnTask

Stage = Literal["train", "val", "test"]


class ClassificationTask(SatcnnTask):
    """Classify 4-band patches.

    Logs overall accuracy and macro F1 each epoch, per-class precision, recall and F1 on
    validation and test, and keeps the confusion matrix of the last validation and test
    epochs (``self.confusion[stage]``) for figures.

    Args:
        model: registered model name, e.g. ``deepsat_cnn``.
        model_kwargs: further model arguments.
        in_channels: input bands.
        num_classes: classes (6 for SAT-6, 4 for SAT-4).
        label_smoothing: label smoothing of the cross-entropy loss.
        lr: learning rate.
        weight_decay: weight decay.
        optimizer: optimiser.
        scheduler: learning-rate schedule.
        channels_last: channels-last memory format (``auto``: on CUDA only).
        compile: compile the model with ``torch.compile`` (see ``SatcnnTask``).
    """

    task = "classification"
    headline = ("test_acc", "test accuracy")
    monitor = "val_acc"
    monitor_mode = "max"

    def __init__(
        self,
        model: str = "deepsat_cnn",
        model_kwargs: dict[str, Any] | None = None,
        in_channels: int = 4,
        num_classes: int = 6,
        label_smoothing: float = 0.0,
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
        self.label_smoothing = label_smoothing
        self.patch_size = 28
        k = num_classes
        overall = MetricCollection(
            {
                "acc": MulticlassAccuracy(k, average="micro"),
                "f1_macro": MulticlassF1Score(k, average="macro"),
            }
        )
        per_class = MetricCollection(
            {
                "precision": MulticlassPrecision(k, average=None),
                "recall": MulticlassRecall(k, average=None),
                "f1": MulticlassF1Score(k, average=None),
            }
        )
        self.train_metrics = overall.clone(prefix="train_")
        self.val_metrics = overall.clone(prefix="val_")
        self.test_metrics = overall.clone(prefix="test_")
        self.val_per_class = per_class.clone(prefix="val_")
        self.test_per_class = per_class.clone(prefix="test_")
        self.val_confmat = MulticlassConfusionMatrix(k)
        self.test_confmat = MulticlassConfusionMatrix(k)
        self.confusion: dict[str, torch.Tensor] = {}
        self.scores: dict[str, dict[str, list[float]]] = {}

    def check_data(self, dm: object) -> ClassData:
        """``dm`` as the task's data, checked: :class:`~satcnn.data.protocol.ClassData`, whose
        classes match the model's outputs, and the checks of :meth:`SatcnnTask.check_data`."""
        data = require_class_data(dm)
        super().check_data(data)
        if len(data.classes) != self.hparams["num_classes"]:
            raise ConfigError(
                f"the data has {len(data.classes)} classes {list(data.classes)} but the model has "
                f"{self.hparams['num_classes']} outputs; set model.init_args.num_classes: {len(data.classes)}"
            )
        return data

    def setup(self, stage: str) -> None:
        super().setup(stage)
        dm = trainer_datamodule(self.trainer) if self._trainer is not None else None
        if dm is not None:
            self.class_names = list(require_class_data(dm).classes)

    def _step(self, batch: dict[str, Any], stage: Stage) -> torch.Tensor:
        x, y = batch["image"], batch["label"]
        logits = self(x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)
        preds = logits.argmax(dim=1)
        n = x.shape[0]
        epoch_only = {"on_epoch": True, "on_step": False, "batch_size": n}
        self.log(f"{stage}_loss", loss, prog_bar=stage != "test", sync_dist=True, **epoch_only)
        metrics = {"train": self.train_metrics, "val": self.val_metrics, "test": self.test_metrics}[stage]
        metrics(preds, y)
        self.log_dict(metrics, batch_size=n, on_epoch=True, on_step=False, prog_bar=stage != "train")
        if stage != "train":
            getattr(self, f"{stage}_per_class").update(preds, y)
            getattr(self, f"{stage}_confmat").update(preds, y)
        return loss

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._step(batch, "test")

    def predict_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        return self(batch["image"]).softmax(dim=1)

    def _epoch_end(self, stage: Stage) -> None:
        per_class = getattr(self, f"{stage}_per_class")
        confmat = getattr(self, f"{stage}_confmat")
        scores = {name.removeprefix(f"{stage}_"): value for name, value in per_class.compute().items()}
        for metric, values in scores.items():
            for cls, value in zip(self.class_names, values, strict=True):
                self.log(f"{stage}_{metric}/{cls}", value, sync_dist=False)
        self.scores[stage] = {m: v.tolist() for m, v in scores.items()}
        self.confusion[stage] = confmat.compute().cpu()
        per_class.reset()
        confmat.reset()

    def on_validation_epoch_end(self) -> None:
        self._epoch_end("val")

    def on_test_epoch_end(self) -> None:
        self._epoch_end("test")

    def figures(self, stage: str) -> dict[str, Any]:
        """Confusion matrix and per-class scores of the last ``stage`` epoch."""
        from satcnn.tasks.figures import confusion_matrix_figure, per_class_scores_figure

        if stage not in self.confusion:
            return {}
        return {
            f"confusion_matrix_{stage}": confusion_matrix_figure(
                self.confusion[stage], self.class_names, f"Confusion matrix ({stage})"
            ),
            f"per_class_scores_{stage}": per_class_scores_figure(
                self.scores[stage], self.class_names, f"Per-class scores ({stage})"
            ),
        }
