"""The callbacks every run gets are config defaults: shown by --print_config, replaced or removed in YAML."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint

from satcnn.tracking.system_metrics import SystemMetricsCallback
from tests.factories import CONFIGS, ROOT, SAT6_CSV

SAT6 = str(CONFIGS / "deepsat" / "sat6.yaml")
DEBUG = str(CONFIGS / "trainer" / "debug.yaml")
KEYS = ["artifacts", "interrupt", "checkpoint", "lr_monitor", "dataset_inputs", "system_monitor"]

# A user's config: learning rates per step instead of per epoch, and no system metrics.
OVERRIDE = {
    "lr_monitor": {"init_args": {"logging_interval": "step"}},
    "system_monitor": None,
}


def _override(tmp_path: Path) -> str:
    path = tmp_path / "callbacks.yaml"
    path.write_text(yaml.safe_dump(OVERRIDE))
    return str(path)


def test_print_config_shows_the_callbacks_as_a_config_sets_them(tmp_path: Path) -> None:
    def printed(*extra: str) -> dict:
        out = subprocess.run(
            [sys.executable, "-m", "satcnn", "fit", "--config", SAT6, *extra, "--print_config"],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, out.stderr
        return dict(yaml.safe_load(out.stdout))

    config = printed("--config", _override(tmp_path))  # one subprocess: defaults and changes
    assert [k for k in config if k in KEYS] == KEYS
    assert config["artifacts"]["init_args"]["log_model"] is True
    assert config["checkpoint"]["class_path"].endswith("LastStateCheckpoint")
    assert config["checkpoint"]["init_args"]["filename"] == "best-{epoch:03d}-{step}"
    assert config["checkpoint"]["init_args"]["monitor"] is None  # the task's
    assert config["lr_monitor"]["class_path"].endswith("LoggedLearningRateMonitor")
    assert config["lr_monitor"]["init_args"]["logging_interval"] == "step"  # default "epoch"
    assert config["system_monitor"] is None


def test_a_replaced_callback_is_honoured_and_not_duplicated(workdir: Path) -> None:
    from satcnn.lightning_cli import SatcnnCLI

    base = ["--config", SAT6, "--config", DEBUG, "--data.init_args.root", str(SAT6_CSV)]
    cli = SatcnnCLI(args=[*base, "--config", _override(workdir), "--last_every_n_steps", "3"], run=False)
    callbacks = cli.trainer.callbacks  # type: ignore[attr-defined]
    monitors = [c for c in callbacks if isinstance(c, LearningRateMonitor)]
    assert [m.logging_interval for m in monitors] == ["step"]
    assert not any(isinstance(c, SystemMetricsCallback) for c in callbacks)
    checkpoints = [c for c in callbacks if isinstance(c, ModelCheckpoint)]
    assert [c.last_every_n_steps for c in checkpoints] == [3]  # type: ignore[attr-defined]

    # one of a role's type in trainer.callbacks replaces the default
    mine = [
        "--trainer.callbacks+=LearningRateMonitor",
        "--trainer.callbacks.init_args.logging_interval",
        "step",
    ]
    cli = SatcnnCLI(args=[*base, *mine], run=False)
    monitors = [c for c in cli.trainer.callbacks if isinstance(c, LearningRateMonitor)]  # type: ignore[attr-defined]
    assert [(type(m), m.logging_interval) for m in monitors] == [(LearningRateMonitor, "step")]


def test_the_checkpoint_default_takes_the_tasks_monitor(tmp_path: Path) -> None:
    import lightning as L

    from satcnn.tasks import SegmentationTask
    from satcnn.tracking.checkpoints import LastStateCheckpoint

    task = SegmentationTask(model="resunet", model_kwargs={"filters": [4, 8, 16, 32]})
    trainer = L.Trainer(logger=False, default_root_dir=tmp_path)
    ckpt = LastStateCheckpoint(save_top_k=3)  # Lightning alone refuses top 3 without a monitor
    ckpt.setup(trainer, task, "fit")
    assert (ckpt.monitor, ckpt.mode, ckpt.save_top_k, ckpt.save_last) == ("val_iou", "max", 3, True)
    assert float(ckpt.kth_value) == float("-inf")
    given = LastStateCheckpoint(monitor="val_loss")
    given.setup(trainer, task, "fit")
    assert (given.monitor, given.mode) == ("val_loss", "min")
