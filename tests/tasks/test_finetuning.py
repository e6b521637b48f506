"""Transfer learning as a schedule: the shipped configs freeze the backbone, then fine-tune it.

Both configs run as shipped (their ``FreezeUnfreeze`` callback and epoch of unfreezing), on a
few real sample rows: SAT-6 -> SAT-4 from a SAT-6 checkpoint, and a classic ResNet-18 from
local RGB weights (torchvision's untrained network saved to a file: no downloads).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from satcnn.cli import main
from satcnn.errors import ConfigError
from satcnn.models import create_model
from satcnn.models.checkpoint import CheckpointMeta, ModelSpec, save_checkpoint
from satcnn.tasks.finetuning import FreezeUnfreeze, backbone_modules
from tests.factories import CONFIGS, SAT6_CSV
from tests.fit_hooks import WeightSnapshots

DEBUG = str(CONFIGS / "trainer" / "debug.yaml")
SAT4_FROM_SAT6 = str(CONFIGS / "deepsat" / "sat4_from_sat6.yaml")
RESNET_TRANSFER = str(CONFIGS / "deepsat" / "sat6_resnet18_transfer.yaml")
QUICK = ["--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1"]
QUICK += ["--trainer.callbacks+=tests.fit_hooks.WeightSnapshots", "--system_metrics", "false"]
QUICK += ["--trainer.logger", "false", "--trainer.enable_checkpointing", "false"]  # the schedule only


def _sat4_release(root: Path, rows: int = 48) -> Path:
    """A SAT-4 Kaggle CSV folder from real SAT-6 sample rows (labels folded onto 4 classes)."""
    root.mkdir()
    for split, n in (("train", rows), ("test", rows // 2)):
        x = pd.read_csv(SAT6_CSV / f"{split}_X_200.csv", header=None, nrows=n)
        y6 = pd.read_csv(SAT6_CSV / f"{split}_y_200.csv", header=None, nrows=n).to_numpy().argmax(1)
        x.to_csv(root / f"X_{split}_sat4.csv", header=False, index=False)
        onehot = pd.DataFrame(np.eye(4, dtype=int)[y6 % 4])
        onehot.to_csv(root / f"y_{split}_sat4.csv", header=False, index=False)
    return root


def _sat6_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    torch.manual_seed(6)
    kwargs = {"channels": [32, 64], "hidden": 128, "in_channels": 4, "num_classes": 6}
    net = create_model("deepsat_cnn", **kwargs)
    meta = CheckpointMeta(
        task="classification",
        model=ModelSpec("deepsat_cnn", kwargs),
        bands=["red", "green", "blue", "nir"],
        mean=[100.0] * 4,
        std=[40.0] * 4,
        classes=[f"c{i}" for i in range(6)],
        patch_size=28,
    )
    save_checkpoint(path, net, meta)
    return {k: v.clone() for k, v in net.state_dict().items()}


def _check_schedule(snaps: WeightSnapshots, head: str, frozen_epochs: int, lr_factor: float) -> None:
    """Backbone unchanged (weights and batch-norm statistics) while frozen, changed after; head trains."""
    backbone = [k for k in snaps.start if not k.startswith(head + ".")]
    assert backbone and len(snaps.epochs) == frozen_epochs + 1
    for epoch in range(frozen_epochs):
        after = snaps.epochs[epoch]
        unchanged = [k for k in backbone if torch.equal(after[k], snaps.start[k])]  # type: ignore[arg-type]
        assert unchanged == backbone, f"epoch {epoch}: backbone changed while frozen"
        assert len(snaps.lrs[epoch]) == 1  # the optimiser holds the head only
    assert not torch.equal(snaps.epochs[0][f"{head}.weight"], snaps.start[f"{head}.weight"])  # type: ignore[arg-type]
    last = snaps.epochs[frozen_epochs]
    changed = [k for k in backbone if k.endswith("weight") and not torch.equal(last[k], snaps.start[k])]  # type: ignore[arg-type]
    assert len(changed) == len([k for k in backbone if k.endswith("weight")])  # every backbone layer trained
    head_lr, backbone_lr = snaps.lrs[frozen_epochs]
    assert backbone_lr == pytest.approx(head_lr * lr_factor)


def test_sat4_from_sat6_config_fine_tunes_a_sat6_checkpoint(workdir: Path) -> None:
    sat6 = _sat6_checkpoint(workdir / "sat6.ckpt")
    root = _sat4_release(workdir / "sat4")
    args = ["fit", "--config", SAT4_FROM_SAT6, "--config", DEBUG, "--data.init_args.root", str(root)]
    args += ["--model.init_args.model_kwargs.pretrained", str(workdir / "sat6.ckpt")]
    args += ["--trainer.max_epochs", "4"]
    assert main([*args, *QUICK]) == 0
    snaps = WeightSnapshots.last
    assert snaps is not None
    # the SAT-6 backbone was loaded; the head is a fresh 4-class one
    assert all(torch.equal(snaps.start[k], v) for k, v in sat6.items() if not k.startswith("classifier"))  # type: ignore[arg-type]
    assert snaps.start["classifier.weight"].shape == (4, 128)  # type: ignore[attr-defined]
    _check_schedule(snaps, "classifier", frozen_epochs=3, lr_factor=0.1)


def test_classic_transfer_config_from_local_rgb_weights(workdir: Path) -> None:
    from torchvision.models import resnet18

    torch.manual_seed(18)
    rgb = resnet18(weights=None).state_dict()
    torch.save(rgb, workdir / "resnet18_rgb.pth")
    args = ["fit", "--config", RESNET_TRANSFER, "--config", DEBUG, "--data.init_args.batch_size", "8"]
    args += ["--data.init_args.root", str(SAT6_CSV), "--trainer.max_epochs", "3"]
    args += ["--model.init_args.model_kwargs.pretrained", str(workdir / "resnet18_rgb.pth")]
    args += ["--model.init_args.model_kwargs.input_size", "32"]
    assert main([*args, *QUICK]) == 0
    snaps = WeightSnapshots.last
    assert snaps is not None
    # RGB stem adapted to 4 bands (NIR = mean filter, all x 3/4), the 1000-class fc replaced by 6 classes
    stem = snaps.start["backbone.conv1.weight"]
    assert stem.shape[1] == 4  # type: ignore[attr-defined]
    assert torch.allclose(stem[:, :3], rgb["conv1.weight"] * 0.75)  # type: ignore[index]
    assert snaps.start["backbone.fc.weight"].shape == (6, 512)  # type: ignore[attr-defined]
    _check_schedule(snaps, "backbone.fc", frozen_epochs=2, lr_factor=0.1)


def test_schedule_refuses_models_without_weights_or_head() -> None:
    task_model = create_model("deepsat_cnn", in_channels=4, num_classes=4)
    assert [type(m).__name__ for m in backbone_modules(task_model, ("classifier",))] == [
        "Sequential",
        "Linear",
        "Dropout",
    ]
    from satcnn.tasks import ClassificationTask, SegmentationTask

    with pytest.raises(ConfigError, match="no pretrained weights"):
        FreezeUnfreeze().freeze_before_training(ClassificationTask("deepsat_cnn", num_classes=4))
    seg = SegmentationTask("unet", {"depth": 2, "base_filters": 4})
    with pytest.raises(ConfigError, match="declares no classifier head"):
        FreezeUnfreeze(require_pretrained=False).freeze_before_training(seg)
    with pytest.raises(ConfigError, match="unfreeze_at_epoch"):
        FreezeUnfreeze(unfreeze_at_epoch=0)
