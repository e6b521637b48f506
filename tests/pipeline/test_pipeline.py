"""``satcnn pipeline run``: the roads pipeline end to end on tiny generated data, killed and resumed.

The extra input is an href on a loopback Range server (read in place, same pixels as the file).

One module fixture runs the pipeline twice (one tiny fit): killed at the start of ``infer``
(``SATCNN_PIPELINE_KILL_AT``), then resumed. The end-to-end checks read the resumed run; the kill
test compares its outputs with an uninterrupted inference and evaluation of the same model.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import pytest
import rasterio
from mlflow import MlflowClient

from satcnn.errors import ConfigError
from satcnn.evaluate.masks import evaluate_roads
from satcnn.inference import InferenceOptions, run_inference
from satcnn.pipeline.spec import load_spec
from satcnn.view import load_catalog
from tests.factories import ROOT, SAMPLES, range_server

pytestmark = pytest.mark.slow  # every test here is an end-to-end run

ROADS = ROOT / "pipelines" / "roads.yaml"
EXTRA = SAMPLES / "rasters" / "SN1_Vegas_WV03_RGBN.tif"
TINY = [
    "fit.epochs=1",
    "fit.overlays=[configs/trainer/debug.yaml]",
    "fit.args.data.init_args.patch_size=64",
    "fit.args.data.init_args.train_samples_per_epoch=16",
    "fit.args.model.init_args.model_kwargs.filters=[4,8,16,32]",
    "validate.held_out=[scene_002]",
    "validate.val_scenes=[scene_001]",
    "infer.window=128",
    "infer.margin=16",
    "evaluate.graph=true",
]


def pipeline(
    tmp: Path, out: str, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m satcnn pipeline run pipelines/roads.yaml`` on the tiny scenes under ``tmp``."""
    sets = [*TINY, f"validate.scenes={tmp / 'scenes'}", *extra]
    args = [sys.executable, "-m", "satcnn", "pipeline", "run", str(ROADS), "--out", str(tmp / out)]
    args += ["--tracking-uri", f"sqlite:///{tmp / 'mlflow.db'}"]
    for item in sets:
        args += ["--set", item]
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(args, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=900)


@dataclass
class Runs:
    tmp: Path
    uri: str
    killed: subprocess.CompletedProcess[str]
    resumed: subprocess.CompletedProcess[str]
    client: MlflowClient

    def stage_runs(self, parent: str) -> dict[str, Any]:
        exp = self.client.get_experiment_by_name("satcnn-pipeline-roads")
        assert exp is not None
        runs = self.client.search_runs([exp.experiment_id], f"tags.`mlflow.parentRunId` = '{parent}'")
        return {r.data.tags["satcnn.stage"]: r for r in runs if r.info.status == "FINISHED"}

    def parents(self) -> list[Any]:
        exp = self.client.get_experiment_by_name("satcnn-pipeline-roads")
        assert exp is not None
        return list(self.client.search_runs([exp.experiment_id], "tags.`satcnn.pipeline` = 'roads'"))

    def parent_of(self, out: str) -> Any:
        (run,) = [r for r in self.parents() if r.data.tags["satcnn.pipeline.out"] == str(self.tmp / out)]
        return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    from satcnn.data.synth import synth_roads

    tmp = tmp_path_factory.mktemp("pipeline")
    synth_roads(tmp / "scenes", 3, 160, seed=0, progress=False)
    with range_server(EXTRA.parent) as srv:  # the extra input is an href, read in place
        extra = f"validate.extra_inputs=['{srv.url}/{EXTRA.name}']"
        loopback = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
        killed = pipeline(tmp, "a", extra, env={"SATCNN_PIPELINE_KILL_AT": "infer", **loopback})
        resumed = pipeline(tmp, "a", extra, env=loopback)
        assert srv.requests[EXTRA.name], "the extra input was read from the server"
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    return Runs(tmp, uri, killed, resumed, MlflowClient(uri, registry_uri=uri))


def test_end_to_end_artifacts(runs: Runs) -> None:
    """Registered model, aligned outputs, metrics in range, a report with figures, nested runs."""
    assert runs.resumed.returncode == 0, runs.resumed.stderr[-3000:]
    out = runs.tmp / "a"
    parent = runs.parent_of("a")
    assert parent.info.status == "FINISHED"
    stages = runs.stage_runs(parent.info.run_id)
    assert sorted(stages) == sorted(["validate", "fit", "register", "infer", "evaluate", "report"])
    for name, run in stages.items():
        assert run.data.tags["satcnn.stage_key"] and run.data.tags["satcnn.stage_complete"] == "true"
        assert parent.data.tags[f"satcnn.stage.{name}"] == run.info.run_id
    # the fit logged into its nested stage run; the registered version points at it
    fit_id = stages["fit"].info.run_id
    # (an MLflow 3 logged model of the fit run since issue 14, no longer a run artifact)
    fit_exp = stages["fit"].info.experiment_id
    logged = runs.client.search_logged_models([fit_exp], filter_string=f"source_run_id = '{fit_id}'")
    assert [m.name for m in logged] == ["resunet-segmentation"]  # issue 24: named, not "model"
    versions = runs.client.search_model_versions("name='roads-resunet'")
    assert fit_id in {v.run_id for v in versions}
    register = stages["register"].data.params["model_uri"]
    assert register.startswith("models:/roads-resunet/")
    # outputs on their inputs' grids: probability and mask per input
    scene = runs.tmp / "scenes" / "images" / "scene_002.tif"
    for src in (scene, EXTRA):
        for name in (f"{src.stem}.tif", f"{src.stem}_mask.tif"):
            with rasterio.open(src) as a, rasterio.open(out / "infer" / name) as b:
                assert (a.crs, a.transform, a.shape) == (b.crs, b.transform, b.shape)
                assert b.tags()["SATCNN_MODEL"] == register
                assert b.tags().get("SATCNN_SOURCE_HREF", "").endswith(f"/{EXTRA.name}") == (src == EXTRA)
        # the road graph beside each probability map (infer: vector: true), in the input's CRS
        graph = out / "infer" / f"{src.stem}_roads.gpkg"
        assert {"lines", "nodes"} <= {name for name, _ in pyogrio.list_layers(graph)}
        with rasterio.open(src) as a:
            assert pyogrio.read_info(graph, layer="lines")["crs"] == a.crs.to_string()
    # the evaluation's metrics: a JSON file with the scores in [0, 1], logged to the evaluate run
    metrics_files = list((out / "evaluate").glob("metrics.json"))
    keys = ("iou", "f1", "relaxed_precision", "relaxed_recall", "breakeven")
    assert metrics_files and all(f'"{k}"' in metrics_files[0].read_text() for k in keys)
    logged = stages["evaluate"].data.metrics
    assert stages["evaluate"].data.tags["satcnn.inference_run_id"] == stages["infer"].info.run_id
    assert stages["evaluate"].data.tags["satcnn.training_run_id"] == fit_id
    graph = json.loads((out / "evaluate" / "graph.json").read_text())  # graph: true
    assert [Path(r["prediction"]).stem for r in graph["per_tile"]] == ["scene_002"]
    for key in (*keys, "apls", "junction_f1"):
        found = [v for k, v in logged.items() if k.endswith(key)]
        assert found and all(0.0 <= v <= 1.0 for v in found), (key, logged)
    # the report: Markdown + HTML, every figure present, logged to the parent
    report = (out / "report" / "report.md").read_text()
    pngs = re.findall(r"\]\(([^()]+\.png)\)", report)
    assert len(pngs) >= 2 and all((out / "report" / p).stat().st_size > 1000 for p in pngs)
    assert "roads_0.png" in pngs and "roads_1.png" in pngs
    assert "| iou" in report or "iou" in report
    assert (out / "report" / "report.html").read_text().count("<img") == len(pngs)
    logged_report = {a.path for a in runs.client.list_artifacts(parent.info.run_id, "report")}
    assert "report/report.md" in logged_report and "report/roads_0.png" in logged_report
    assert str(out / "report" / "report.md") in runs.resumed.stdout and "satcnn ui" in runs.resumed.stdout
    # the map of the outputs: the command printed and in the report finds every input's tile
    assert f"satcnn view {out}" in runs.resumed.stdout and f"`satcnn view {out}`" in report
    assert sorted(t.name for t in load_catalog(out).tiles) == sorted([scene.stem, EXTRA.stem])


def test_a_pipeline_prints_each_line_once_and_no_library_warnings(runs: Runs) -> None:
    """Issue 24: Lightning's lines came twice (its own handler and satcnn's), with MLflow UserWarnings,
    a pytree FutureWarning, LightningCLI's "args parameter" warning and the litlogger tip at each fit."""
    err = runs.killed.stderr + runs.resumed.stderr  # the fit ran in the first
    lines = runs.killed.stderr.splitlines()
    assert len([line for line in lines if "GPU available:" in line]) == 1, err
    assert len([line for line in lines if "`Trainer.fit` stopped" in line]) == 1, err
    assert not [line for line in lines if line.startswith(("INFO lightning", "WARNING lightning"))], err
    noise = ("Warning:", "UserWarning", "FutureWarning", "DeprecationWarning", "is deprecated", "litlogger")
    noise += ("args parameter", "Downloading artifacts")
    found = [line for line in err.splitlines() if any(n in line for n in noise)]
    assert not found, found
    report = (runs.tmp / "a" / "report" / "report.md").read_text()
    assert not re.search(r"\d\.\d{4}\b", report) and re.search(r"\| pixels \| \d+ \|", report), report


def test_killed_pipeline_resumes(runs: Runs) -> None:
    """Killed at the start of infer, then rerun: finished stages reused with their run ids, the
    unfinished one redone, and the outputs equal to an uninterrupted run's."""
    assert runs.killed.returncode == -9, runs.killed.stderr[-3000:]
    assert runs.resumed.returncode == 0, runs.resumed.stderr[-3000:]
    assert "reused: validate, fit, register" in runs.resumed.stdout
    parent = runs.parent_of("a")  # the killed run's parent, continued
    assert parent.info.status == "FINISHED"
    stages = runs.stage_runs(parent.info.run_id)
    assert sorted(stages) == sorted(["validate", "fit", "register", "infer", "evaluate", "report"])
    exp = runs.client.get_experiment_by_name("satcnn-pipeline-roads")
    assert exp is not None
    killed = runs.client.search_runs(
        [exp.experiment_id],
        f"tags.`mlflow.parentRunId` = '{parent.info.run_id}' and attributes.status = 'KILLED'",
    )
    assert [r.data.tags["satcnn.stage"] for r in killed] == ["infer"]
    # the resumed outputs equal an uninterrupted inference and evaluation of the registered model
    uri = stages["register"].data.params["model_uri"]
    scene = runs.tmp / "scenes" / "images" / "scene_002.tif"
    again = runs.tmp / "again"
    options = InferenceOptions(
        model=uri, inputs=[str(scene), str(EXTRA)], output_dir=again, window=128, margin=16,
        output_type="both", progress=False, track=False, tracking_uri=runs.uri,
    )  # fmt: skip
    run_inference(options)
    for name in ("scene_002.tif", "scene_002_mask.tif", f"{EXTRA.stem}.tif"):
        with rasterio.open(runs.tmp / "a" / "infer" / name) as a, rasterio.open(again / name) as b:
            assert a.tags()["SATCNN_MODEL_DIGEST"] == b.tags()["SATCNN_MODEL_DIGEST"]
            np.testing.assert_array_equal(a.read(), b.read())
    truth = runs.tmp / "scenes" / "masks" / "scene_002.tif"
    scores = evaluate_roads([again / "scene_002.tif"], [truth], runs.tmp / "again-eval", threshold=0.5, rho=3)
    logged = stages["evaluate"].data.metrics
    for key, value in scores.metrics.items():
        if np.isfinite(value):
            assert logged[key] == pytest.approx(value), key


def test_overrides_and_bad_files(tmp_path: Path) -> None:
    spec = load_spec(
        ROADS,
        ["fit.epochs=2", "infer.inputs=[x.tif, y.tif]", "fit.args.model.init_args.lr=0.1"],
        out=tmp_path,
    )
    assert spec.stages["fit"]["args"]["model.init_args.lr"] == 0.1
    assert spec.stages["fit"]["epochs"] == 2 and spec.stages["infer"]["inputs"] == ["x.tif", "y.tif"]
    assert spec.out == tmp_path.resolve() and spec.stages["register"]["name"] == "roads-resunet"
    with pytest.raises(ConfigError, match="unknown key 'fitt'"):
        load_spec(ROADS, ["fitt.epochs=2"])
    with pytest.raises(
        ConfigError, match="stage 'infer': unknown setting\\(s\\) vectr; known: inputs, window"
    ):
        load_spec(ROADS, ["infer.vectr=true"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_spec(ROADS, ["fit.epochs"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntask: forest\nstages: {}\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "satcnn", "pipeline", "run", str(bad)]
    out = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines() == [
        f"satcnn: error: {bad}: task must be one of roads, landcover, got 'forest'"
    ]
    assert not (tmp_path / "mlflow.db").exists()
