"""pipelines/roads_paper.yaml (Zhang, Liu & Wang 2017) at a tiny size: the file validates and trains.

The sizes are overridden as a user would (``--set``); the dataset layout (train, valid and test
split folders, as ``satcnn data fetch massachusetts-roads`` writes) is built from tiny scenes.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from satcnn.cli import main
from satcnn.models.checkpoint import read_checkpoint
from satcnn.pipeline.context import StageContext
from satcnn.pipeline.spec import load_spec
from satcnn.pipeline.train import fit_argv
from satcnn.pipeline.validate import validate_run
from tests.factories import ROOT, write_scene

PAPER = ROOT / "pipelines" / "roads_paper.yaml"


def _tiny(data: Path) -> list[str]:
    splits = ",".join(str(data / s) for s in ("train", "valid", "test"))
    return [
        f"validate.scenes=[{splits}]",
        f"validate.val_scenes={data / 'valid'}",
        f"validate.held_out={data / 'test'}",
        f"fit.config={ROOT / 'configs' / 'roads' / 'resunet.yaml'}",  # the working folder is a temporary one
        f"fit.overlays=[{ROOT / 'configs' / 'trainer' / 'debug.yaml'}]",
        "fit.epochs=2",
        "fit.args.model.init_args.model_kwargs.filters=[4,8,16,32]",
        "fit.args.model.init_args.lr_step_epochs=1",
        "fit.args.data.init_args.patch_size=64",
        "fit.args.data.init_args.batch_size=2",
        "fit.args.data.init_args.train_samples_per_epoch=4",
        "fit.args.data.init_args.num_workers=0",
    ]


def test_the_recipe_holds_the_papers_settings() -> None:
    spec = load_spec(PAPER, [])
    fit = spec.stage("fit")
    args = fit["args"]
    assert fit["epochs"] == 50 and args["model.init_args.model_kwargs.filters"] == [64, 128, 256, 512]
    assert (args["data.init_args.patch_size"], args["data.init_args.batch_size"]) == (224, 8)
    assert (args["model.init_args.loss"], args["model.init_args.optimizer"]) == ("mse", "sgd")
    assert args["model.init_args.lr"] == 0.001 and args["model.init_args.scheduler"] == "step"
    assert (args["model.init_args.lr_step_epochs"], args["model.init_args.lr_gamma"]) == (20, 0.1)
    assert spec.stage("evaluate")["rho"] == 3


@pytest.mark.slow
def test_tiny_run_of_the_paper_recipe_validates_and_trains(tmp_path: Path, workdir: Path) -> None:
    data = tmp_path / "massachusetts-roads"
    for i, (split, name) in enumerate([("train", "t1"), ("train", "t2"), ("valid", "v1"), ("test", "x1")]):
        write_scene(data / split, name, height=64, width=64, count=3, res=1.0, seed=i)
    spec = load_spec(PAPER, _tiny(data), out=tmp_path / "out")

    tracker = cast(Any, SimpleNamespace(tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}"))
    validate = StageContext(spec, "validate", spec.stage("validate"), {}, tracker)
    outputs = validate_run(validate, None)
    linked = tmp_path / "out" / "validate" / "scenes"
    assert sorted(p.name for p in (linked / "images").iterdir()) == ["t1.tif", "t2.tif", "v1.tif", "x1.tif"]
    assert outputs["held_out"] == ["x1"] and outputs["data_args"]["data.init_args.val_scenes"] == ["v1"]

    fit = StageContext(spec, "fit", spec.stage("fit"), {"validate": outputs}, tracker)
    argv = fit_argv(fit, "unused")
    cut = argv.index("--trainer.logger.init_args.run_id")
    argv = [*argv[:cut], *argv[cut + 2 :], "--trainer.logger", "false", "--trainer.limit_val_batches", "1"]
    argv += ["--test_after_fit", "false"]
    assert main(argv) == 0
    (best,) = (tmp_path / "out" / "fit").rglob("best*.ckpt")
    ckpt = read_checkpoint(best)
    assert ckpt.meta.bands == ["red", "green", "blue"] and ckpt.meta.patch_size == 64
    hparams = ckpt.raw["hyper_parameters"]
    assert (hparams["loss"], hparams["optimizer"], hparams["scheduler"]) == ("mse", "sgd", "step")
    # SGD without momentum, under the step schedule of the file (here: x0.1 every epoch)
    (group,) = ckpt.raw["optimizer_states"][0]["param_groups"]
    assert group["momentum"] == 0.0 and group["weight_decay"] == 0.0
    (schedule,) = ckpt.raw["lr_schedulers"]
    assert (schedule["step_size"], schedule["gamma"]) == (1, 0.1)
