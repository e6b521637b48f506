"""Road extraction end to end on generated scenes: synth-roads -> fit ResUNet -> held-out IoU."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import rasterio
from mlflow import MlflowClient

from satcnn.cli import main
from tests.factories import CONFIGS

RESUNET = str(CONFIGS / "roads" / "resunet.yaml")
DEBUG = str(CONFIGS / "trainer" / "debug.yaml")


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    assert (
        main(["data", "synth-roads", "--out", str(root), "--count", "4", "--size", "384", "--seed", "7"]) == 0
    )
    return root


def test_synth_roads_cli_layout(scenes: Path) -> None:
    names = sorted(p.name for p in (scenes / "images").glob("*.tif"))
    assert names == sorted(p.name for p in (scenes / "masks").glob("*.tif")) and len(names) == 4
    with (
        rasterio.open(scenes / "images" / names[0]) as img,
        rasterio.open(scenes / "masks" / names[0]) as msk,
    ):
        assert img.count == 4 and img.dtypes[0] == "uint8" and img.crs.is_projected
        assert (img.transform, img.shape, img.crs) == (msk.transform, msk.shape, msk.crs)


@pytest.mark.slow
def test_resunet_debug_fit_leaves_checkpoint(scenes: Path, workdir: Path) -> None:
    """The interface other stages rely on: fit --data.init_args.root DIR --trainer.max_steps 2."""
    args = ["fit", "--config", RESUNET, "--config", DEBUG, "--data.init_args.root", str(scenes)]
    args += [
        "--data.init_args.patch_size",
        "64",
        "--data.init_args.batch_size",
        "2",
        "--trainer.max_steps",
        "2",
    ]
    args += ["--model.init_args.model_kwargs.filters", "[8, 16, 32, 64]"]
    assert main(args) == 0
    assert list((workdir / "runs").rglob("best-*.ckpt"))


@pytest.mark.slow
def test_short_resunet_fit_beats_trivial_predictions(
    scenes: Path, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A few CPU minutes of ResUNet (paper layout at a quarter of the width) on two generated scenes;
    the checkpoint is chosen on a third (validation) and tested on a fourth, never seen before.

    All-background scores IoU 0; all-road scores the road fraction of the held-out scene (~0.1).
    """
    args = ["fit", "--config", RESUNET, "--data.init_args.root", str(scenes)]
    args += ["--data.init_args.val_scenes", "[scene_002]", "--data.init_args.test_scenes", "[scene_003]"]
    args += ["--data.init_args.patch_size", "96", "--data.init_args.batch_size", "8"]
    args += ["--data.init_args.num_workers", "0", "--data.init_args.train_samples_per_epoch", "160"]
    args += [
        "--data.init_args.val_overlap",
        "16",
        "--model.init_args.model_kwargs.filters",
        "[16, 32, 64, 128]",
    ]
    args += [
        "--model.init_args.lr",
        "0.003",
        "--trainer.max_epochs",
        "8",
        "--trainer.enable_progress_bar",
        "false",
    ]
    args += ["--test_after_fit", "true"]
    assert main(args) == 0
    out = capsys.readouterr().out
    iou = float(re.search(r"^test IoU: ([\d.]+)$", out, re.M).group(1))  # type: ignore[union-attr]
    with rasterio.open(scenes / "masks" / "scene_003.tif") as src:
        all_road_iou = float((src.read(1) > 0).mean())
    print(f"held-out IoU {iou:.3f}, all-road IoU {all_road_iou:.3f}")
    assert iou > max(0.3, 2.5 * all_road_iou), (iou, all_road_iou)
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    run = client.search_runs([client.get_experiment_by_name("roads-resunet").experiment_id])[0]  # type: ignore[union-attr]
    assert np.isfinite(run.data.metrics["val_breakeven"])
    figures = {a.path for a in client.list_artifacts(run.info.run_id, "figures")}
    assert "figures/road_overlays_val.png" in figures
