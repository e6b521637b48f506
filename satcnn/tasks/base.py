"""The LightningModule base shared by satcnn tasks.

A task wires a registered model, a loss, metrics and an optimiser. It normalises inputs itself
(:class:`~satcnn.models.normalize.Normalize`, the normaliser inference uses too) with per-band
statistics taken from the datamodule at fit time (what it needs from a datamodule is
:class:`~satcnn.data.protocol.TaskData`), and writes the checkpoint record
(:mod:`satcnn.models.checkpoint`) into every checkpoint, so a checkpoint alone rebuilds the model
for inference. Callbacks (checkpointing, MLflow) are wired by the CLI, not here: a task needs no
tracking.
"""

from __future__ import annotations

import logging
from typing import Any, Literal, cast

import lightning as L
import torch

from satcnn import __version__
from satcnn.checks import require_at_least, require_in_range
from satcnn.data.protocol import (
    TaskData,
    has_band_percentiles,
    has_raster_bands,
    require_task_data,
    trainer_datamodule,
)
from satcnn.errors import ConfigError
from satcnn.models import create_model
from satcnn.models.checkpoint import TASKS, CheckpointMeta, ModelSpec, Task, attach, parse_checkpoint
from satcnn.models.normalize import ChannelsLast, Normalize, resolve_channels_last, use_channels_last
from satcnn.models.torchgeo_weights import check_data_bands

log = logging.getLogger(__name__)


class SatcnnTask(L.LightningModule):
    """Base of satcnn's LightningModules.

    Args:
        model: registered model name (see ``satcnn.models.list_models()``).
        model_kwargs: keyword arguments of the model, besides ``in_channels`` and ``num_classes``.
        in_channels: input bands.
        num_classes: outputs of the model.
        lr: learning rate.
        weight_decay: weight decay (decoupled for AdamW).
        optimizer: optimiser.
        scheduler: learning-rate schedule: ``cosine`` over ``trainer.max_epochs``, ``step`` (times
            ``lr_gamma`` every ``lr_step_epochs`` epochs) or ``none``.
        channels_last: channels-last memory format: ``auto`` (on CUDA only), ``true`` or ``false``.
        compile: compile the model with ``torch.compile`` (in place, so checkpoint keys do not
            change). Precision is the trainer's: ``trainer.precision: bf16-mixed``.
        momentum: momentum of ``sgd``, in [0, 1).
        lr_step_epochs: ``step`` schedule: epochs between two reductions.
        lr_gamma: ``step`` schedule: factor of each reduction, in (0, 1].
    """

    task: str = "base"
    headline: tuple[str, str] = ("test_loss", "test loss")  # (metric, label) printed after a run
    monitor: str = "val_loss"
    monitor_mode: Literal["min", "max"] = "min"

    def __init__(
        self,
        model: str,
        model_kwargs: dict[str, Any] | None = None,
        in_channels: int = 4,
        num_classes: int = 1,
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
        super().__init__()
        require_in_range("momentum", momentum, 0.0, 1.0, high_open=True)
        require_at_least("lr_step_epochs", lr_step_epochs, 1, whole=True)
        require_in_range("lr_gamma", lr_gamma, 0.0, 1.0, low_open=True)
        self.save_hyperparameters()
        self.model_name = model
        self.model_kwargs = {**(model_kwargs or {}), "in_channels": in_channels, "num_classes": num_classes}
        self.model = create_model(model, **self.model_kwargs)
        self.normalize = Normalize(in_channels)
        self.channels_last = resolve_channels_last(channels_last, "cpu")  # "auto": decided in setup
        use_channels_last(self.model, self.normalize, self.channels_last)
        if compile:
            self.model.compile()  # in place: checkpoint keys do not change
        self.bands: list[str] = [f"band{i + 1}" for i in range(in_channels)]
        self.class_names: list[str] = [str(i) for i in range(num_classes)]
        self.patch_size: int | None = None
        self.input_dtype = "uint8"
        self.band_sources: list[int] = []
        self.band_colorinterp: list[str] = []
        self.percentiles: list[list[float]] = []

    # -- data-derived state -----------------------------------------------------------------
    def check_data(self, dm: object) -> TaskData:
        """``dm`` as the task's data, checked before any run starts.

        Raises:
            ConfigError: ``dm`` lacks a member of :class:`~satcnn.data.protocol.TaskData`, or its
                bands or patch size do not fit the model.
        """
        data = require_task_data(dm)
        if data.in_channels != self.hparams["in_channels"]:
            raise ConfigError(
                f"the data has {data.in_channels} bands but the model takes {self.hparams['in_channels']}; "
                f"set model.init_args.in_channels: {data.in_channels}"
            )
        multiple = self.model.size_multiple
        patch = data.patch_size
        if patch is not None and patch % multiple:
            padded = -(-patch // multiple) * multiple
            raise ConfigError(
                f"patch_size {patch} is not a multiple of {multiple}, which {self.model_name} needs; "
                f"set data.init_args.patch_size: {padded}"
            )
        return data

    def setup(self, stage: str) -> None:
        if self._trainer is None:
            return
        device = self.trainer.strategy.root_device
        self.channels_last = resolve_channels_last(self.hparams["channels_last"], device)
        use_channels_last(self.model, self.normalize, self.channels_last)
        dm = trainer_datamodule(self.trainer)
        if dm is None:
            return
        data = self.check_data(dm)
        check_data_bands(self.model.pretrained_record, data.bands)
        self.bands = list(data.bands)
        self.patch_size = data.patch_size
        if has_raster_bands(data):
            self.input_dtype = str(data.input_dtype)
            self.band_sources = list(data.band_sources)
            self.band_colorinterp = list(data.band_colorinterp)
        if stage == "fit":
            mean, std = data.band_stats()
            if self.model.input_stats is not None:  # pretrained_normalization="weights"
                mean, std = self.model.input_stats
                log.info(
                    "normalisation of the pretrained weights (not the training split's): mean %s, std %s",
                    mean,
                    std,
                )
            else:
                log.info("normalisation from the training split: mean %s, std %s", mean, std)
            self.normalize.set(mean, std)
        if stage == "fit" and has_band_percentiles(data):
            self.percentiles = [list(p) for p in data.band_percentiles()]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw digital numbers in, the model's output out (as ``NormalizedModel`` in inference)."""
        return self.model(self.normalize(x))

    # -- checkpoint metadata ------------------------------------------------------------------
    def checkpoint_meta(self) -> CheckpointMeta:
        """The checkpoint record: everything inference needs besides the weights."""
        if self.task not in TASKS:
            raise ConfigError(f"{type(self).__name__}.task is {self.task!r}, not one of {', '.join(TASKS)}")
        return CheckpointMeta(
            task=cast(Task, self.task),
            model=ModelSpec(self.model_name, self.rebuild_kwargs()),
            bands=list(self.bands),
            mean=self.normalize.mean.tolist(),
            std=self.normalize.std.tolist(),
            classes=list(self.class_names),
            patch_size=self.patch_size,
            input_dtype=self.input_dtype,
            satcnn_version=__version__,
            band_sources=list(self.band_sources),
            band_colorinterp=list(self.band_colorinterp),
            percentiles=[list(p) for p in self.percentiles],
            pretrained=dict(self.model.pretrained_record or {}),
        )

    def rebuild_kwargs(self) -> dict[str, Any]:
        """Model kwargs that rebuild the network anywhere: transfer-learning sources are dropped,
        since their weights are already in the checkpoint's state dict."""
        kwargs = dict(self.model_kwargs)
        if kwargs.get("pretrained") is not None:
            kwargs["pretrained"] = None
        if kwargs.get("freeze_backbone"):
            kwargs["freeze_backbone"] = False  # freezing is a training choice, not part of the model
        return kwargs

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        attach(checkpoint, self.checkpoint_meta())

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        meta = parse_checkpoint(checkpoint).meta  # any readable format; checks the weights' digest
        self.bands = list(meta.bands)
        self.class_names = list(meta.classes) or self.class_names
        self.patch_size = meta.patch_size or self.patch_size
        self.input_dtype = meta.input_dtype or self.input_dtype
        self.band_sources = list(meta.band_sources)
        self.band_colorinterp = list(meta.band_colorinterp)
        self.percentiles = [list(p) for p in meta.percentiles]

    # -- optimisation -----------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        hp = self.hparams
        # Frozen parameters stay out: a fine-tuning schedule adds them as their own group later.
        params = [p for p in self.parameters() if p.requires_grad]
        opt: torch.optim.Optimizer
        if hp["optimizer"] == "sgd":
            momentum = hp.get("momentum", 0.9)  # checkpoints of before the option: 0.9
            opt = torch.optim.SGD(params, lr=hp["lr"], momentum=momentum, weight_decay=hp["weight_decay"])
        elif hp["optimizer"] == "adam":
            opt = torch.optim.Adam(params, lr=hp["lr"], weight_decay=hp["weight_decay"])
        else:
            opt = torch.optim.AdamW(params, lr=hp["lr"], weight_decay=hp["weight_decay"])
        if hp["scheduler"] == "none":
            return opt
        if hp["scheduler"] == "step":  # epochs, whatever bounds the run
            step = torch.optim.lr_scheduler.StepLR(opt, step_size=hp["lr_step_epochs"], gamma=hp["lr_gamma"])
            return {"optimizer": opt, "lr_scheduler": {"scheduler": step, "interval": "epoch"}}
        max_steps = self.trainer.max_steps
        if self.trainer.max_epochs is not None and self.trainer.max_epochs > 0:
            interval, length = "epoch", self.trainer.max_epochs
        elif max_steps is not None and max_steps > 0:
            interval, length = "step", max_steps  # runs bounded by steps only
        else:
            return opt  # no known length: keep the rate constant
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=length)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": interval}}
