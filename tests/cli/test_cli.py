"""The command line: help, configs, exit codes and one-line errors for bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from satcnn.cli import main
from tests.factories import CONFIGS, SAT6_CSV, satcnn

DEBUG = str(CONFIGS / "trainer" / "debug.yaml")
SAT6 = str(CONFIGS / "deepsat" / "sat6.yaml")


def test_help_lists_commands(tmp_path: Path) -> None:
    out = satcnn("--help", cwd=tmp_path)
    assert out.returncode == 0
    for command in ("fit", "validate", "test", "predict", "infer", "data", "ui"):
        assert f"\n  {command} " in out.stdout
    assert satcnn("--version", cwd=tmp_path).stdout.startswith("satcnn ")


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert satcnn(cwd=tmp_path).returncode == 2
    assert satcnn("frobnicate", cwd=tmp_path).returncode == 2
    out = satcnn("fit", "--config", SAT6, "--trainer.max_epochs", "many", cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr


@pytest.mark.parametrize(
    "config", sorted(str(p) for p in CONFIGS.glob("*/*.yaml") if p.parent.name != "trainer")
)
def test_every_shipped_config_instantiates(config: str, workdir: Path) -> None:
    """Each config parses and builds its task, datamodule and trainer (with the debug overlay)."""
    from satcnn.lightning_cli import SatcnnCLI

    cli = SatcnnCLI(args=["--config", config, "--config", DEBUG], run=False)
    assert cli.model is not None and cli.datamodule is not None and cli.trainer is not None


@pytest.mark.slow
def test_print_config_shows_every_default(tmp_path: Path) -> None:
    out = satcnn("fit", "--config", SAT6, "--print_config", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    config = yaml.safe_load(out.stdout)
    assert config["model"]["init_args"]["model"] == "deepsat_cnn"
    assert "label_smoothing" in config["model"]["init_args"]  # defaults appear, not only what the file sets
    assert config["data"]["init_args"]["val_fraction"] == 0.1


def _bad_csv_release(root: Path) -> Path:
    """A copy of the real sample CSVs whose 4th training row has one value too many."""
    root.mkdir()
    for src in SAT6_CSV.iterdir():
        (root / src.name).write_bytes(src.read_bytes())
    lines = (root / "train_X_200.csv").read_text().splitlines()
    lines[3] += ",0"
    (root / "train_X_200.csv").write_text("\n".join(lines) + "\n")
    return root


def _no_run_left(workdir: Path) -> None:
    assert not (workdir / "runs").exists(), "no checkpoint folder for a run that never started"
    assert not (workdir / "mlruns").exists(), "no MLflow artifacts for a run that never started"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("make_root", "message"),
    [
        (lambda d: d / "missing.mat", "missing.mat: DeepSat data not found"),
        (lambda d: _bad_csv_release(d / "bad"), "train_X_200.csv: row 4 has 3137 values; expected 3136"),
    ],
)
def test_bad_input_one_line_exit_1(make_root, message: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = make_root(tmp_path)
    out = satcnn("fit", "--config", SAT6, "--config", DEBUG, "--data.init_args.root", str(root), cwd=tmp_path)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("satcnn: error:")]
    assert len(errors) == 1 and message in errors[0], out.stderr
    _no_run_left(tmp_path)


@pytest.mark.slow
def test_wrong_class_count_is_a_clear_error(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--data.init_args.root", str(SAT6_CSV), "--model.init_args.num_classes", "4"]
    assert main(["fit", "--config", SAT6, "--config", DEBUG, *args]) == 1
    assert "the data has 6 classes" in capsys.readouterr().err
    _no_run_left(workdir)


def test_fcn_equivalence_of_deepsat_cnn() -> None:
    """The fully convolutional form classifies every 28x28 window at stride 4 like the patch model."""
    import torch

    from satcnn.models import create_model

    torch.manual_seed(0)
    model = create_model("deepsat_cnn", in_channels=4, num_classes=6).eval()
    fcn = model.as_fully_convolutional()  # type: ignore[operator]
    x = torch.rand(1, 4, 28 + 4 * 5, 28 + 4 * 3) * 255
    dense = fcn(x)
    assert dense.shape == (1, 6, 6, 4)
    with torch.no_grad():
        for i in range(6):
            for j in range(4):
                window = x[:, :, 4 * i : 4 * i + 28, 4 * j : 4 * j + 28]
                np.testing.assert_allclose(dense[0, :, i, j], model(window)[0], rtol=1e-4, atol=1e-4)


def test_patch_size_the_model_cannot_take(workdir: Path) -> None:
    from types import SimpleNamespace

    from satcnn.errors import ConfigError
    from satcnn.tasks import SegmentationTask

    task = SegmentationTask(model="resunet", model_kwargs={"filters": [4, 8, 16, 32]})
    with pytest.raises(ConfigError, match=r"patch_size 100 is not a multiple of 8.*patch_size: 104"):
        task.check_data(SimpleNamespace(bands="rgbn", in_channels=4, patch_size=100, band_stats=lambda: None))


def test_resume_from_a_non_checkpoint(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = workdir / "bad.ckpt"
    bad.write_bytes(b"\x80\x04 not a checkpoint at all")
    args = ["fit", "--config", SAT6, "--config", DEBUG, "--data.init_args.root", str(SAT6_CSV)]
    assert main([*args, "--ckpt_path", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "bad.ckpt: not a readable PyTorch checkpoint" in err and "Traceback" not in err
    _no_run_left(workdir)


def test_the_cli_wires_callbacks_so_a_task_needs_no_tracking(tmp_path: Path) -> None:
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint

    from satcnn.lightning_cli import DEFAULT_CALLBACKS, default_callbacks
    from satcnn.tasks import SegmentationTask
    from satcnn.tracking.callbacks import LoggedLearningRateMonitor, MLflowArtifactsCallback
    from satcnn.tracking.checkpoints import LastStateCheckpoint
    from satcnn.tracking.datasets import MLflowDatasetsCallback
    from satcnn.tracking.interrupt import InterruptHandler
    from satcnn.tracking.system_metrics import SystemMetricsCallback

    built = {key: d.cls(**d.init_args) for key, d in DEFAULT_CALLBACKS.items()}
    made = default_callbacks(built, {})
    expected = [MLflowArtifactsCallback, InterruptHandler, LastStateCheckpoint, LoggedLearningRateMonitor]
    expected.append(MLflowDatasetsCallback)
    assert [type(c) for c in made] == [*expected, SystemMetricsCallback]
    assert [type(c) for c in default_callbacks({**built, "system_monitor": None}, {})] == expected
    ckpt = made[2]
    task = SegmentationTask(model="resunet", model_kwargs={"filters": [4, 8, 16, 32]})
    ckpt.setup(L.Trainer(logger=False, default_root_dir=tmp_path), task, "fit")
    assert isinstance(ckpt, ModelCheckpoint) and (ckpt.monitor, ckpt.mode) == ("val_iou", "max")
    assert ckpt.save_last
    # a configured callback of a role wins; checkpointing off
    mine = ModelCheckpoint(monitor="val_loss")
    made = default_callbacks(built, {"callbacks": [mine], "logger": False})
    assert LastStateCheckpoint not in [type(c) for c in made] and len(made) == 5
    off = default_callbacks(built, {"enable_checkpointing": False})
    assert not any(isinstance(c, ModelCheckpoint) for c in off)
