"""Batch inference (`satcnn infer` / run_inference): real sample tiles, bad inputs, resume, MLflow, shards."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pytest
import rasterio
import torch
from mlflow import MlflowClient
from rio_cogeo.cogeo import cog_validate

from satcnn.cli import main
from satcnn.errors import ConfigError, RasterError
from satcnn.inference import (
    InferenceOptions,
    OptionError,
    load_model,
    resolve_device,
    resolve_inputs,
    run_inference,
    shard_from_env,
)
from satcnn.inference.classify import class_map_transform
from satcnn.models.checkpoint import WEIGHTS_PREFIX, weights_digest
from tests.factories import (
    CLASSES,
    INFER,
    NAIP,
    ROOT,
    VEGAS,
    crop,
    pan_road_checkpoint,
    write_checkpoint,
)
from tests.factories.fits import TrackedFit, copy_store


@pytest.fixture
def classifier(tmp_path: Path) -> Path:
    return write_checkpoint(tmp_path / "models" / "sat6.ckpt")


def _read(path: Path) -> tuple[np.ndarray, dict[str, object]]:
    with rasterio.open(path) as ds:
        return ds.read(), {
            k: ds.profile[k] for k in ("crs", "transform", "width", "height", "dtype", "nodata")
        }


# -- (a) real sample tiles -------------------------------------------------------------------------
def test_classifier_on_naip_tile(classifier: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    report = run_inference(InferenceOptions(classifier, NAIP, out, track=False, progress=False))
    assert [r.status for r in report.results] == ["done"]
    cmap = out / f"{NAIP.stem}.tif"
    with rasterio.open(NAIP) as src, rasterio.open(cmap) as ds:
        assert ds.crs == src.crs and ds.crs.to_epsg() == 26914
        assert ds.transform == class_map_transform(src.transform, 28, 28)
        assert (ds.height, ds.width) == ((src.height - 28) // 28 + 1, (src.width - 28) // 28 + 1)
        assert json.loads(ds.tags()["CLASS_NAMES"]) == CLASSES
        classes = ds.read(1)
    assert cog_validate(cmap)[0]
    assert set(np.unique(classes)) <= set(range(6)) | {255}
    with (out / "class_fractions.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["tile"] for r in rows] == [NAIP.stem]
    fractions = np.array([float(rows[0][c]) for c in CLASSES])
    assert fractions.sum() == pytest.approx(1.0, abs=1e-5)
    valid = classes[classes != 255]
    np.testing.assert_allclose(fractions, np.bincount(valid, minlength=6) / valid.size, atol=1e-6)

    # (f) a rerun skips the finished tile; --overwrite redoes it
    os.utime(cmap, ns=(10**18, 10**18))
    again = run_inference(InferenceOptions(classifier, NAIP, out, track=False, progress=False))
    assert [r.status for r in again.results] == ["skipped"]
    assert cmap.stat().st_mtime_ns == 10**18
    assert again.results[0].class_fractions == pytest.approx(report.results[0].class_fractions)
    redo = run_inference(InferenceOptions(classifier, NAIP, out, track=False, progress=False, overwrite=True))
    assert [r.status for r in redo.results] == ["done"] and cmap.stat().st_mtime_ns != 10**18
    np.testing.assert_array_equal(_read(cmap)[0][0], classes)


def test_road_model_on_spacenet_tile_keeps_the_grid(tmp_path: Path) -> None:
    ckpt = pan_road_checkpoint(tmp_path / "road.ckpt", base_filters=8, patch_size=256)
    out = tmp_path / "out"
    code = main(
        [
            "infer",
            "--model",
            str(ckpt),
            "--input",
            str(VEGAS),
            "--output",
            str(out),
            "--output-type",
            "both",
            "--threshold",
            "0.5",
            "--no-track",
            "--no-progress",
        ]
    )
    assert code == 0
    _, src = _read(VEGAS)
    prob, p_prof = _read(out / f"{VEGAS.stem}.tif")
    mask, m_prof = _read(out / f"{VEGAS.stem}_mask.tif")
    for prof in (p_prof, m_prof):
        assert {k: prof[k] for k in ("crs", "transform", "width", "height")} == {
            k: src[k] for k in ("crs", "transform", "width", "height")
        }
    assert p_prof["crs"].to_epsg() == 4326  # type: ignore[attr-defined]
    assert p_prof["dtype"] == "uint8" and p_prof["nodata"] == 255
    assert prob.min() < prob.max()  # the model responds to the image
    np.testing.assert_array_equal(mask[0], (prob[0] / 254.0 >= 0.5).astype(np.uint8))
    assert not (out / "class_fractions.csv").exists()


# -- (d) bad inputs ------------------------------------------------------------------------------------
@pytest.fixture
def bad_tiles(tmp_path: Path) -> dict[str, Path]:
    d = tmp_path / "tiles"
    d.mkdir()
    tiles = {"good": crop(NAIP, d / "a_good.tif", 120), "good2": crop(NAIP, d / "z_good.tif", 64)}
    tiles["corrupt"] = d / "b_corrupt.tif"
    tiles["corrupt"].write_bytes(np.random.default_rng(0).bytes(5000))
    tiles["nocrs"] = crop(NAIP, d / "c_nocrs.tif", 64, crs=None)
    tiles["bands"] = crop(NAIP, d / "d_threeband.tif", 64, count=3)
    tiles["small"] = crop(NAIP, d / "e_small.tif", 20)
    tiles["dtype"] = crop(NAIP, d / "f_float.tif", 64, dtype="float32", nodata=None)
    png = tmp_path / "g_picture.png"
    with rasterio.open(png, "w", driver="PNG", width=64, height=64, count=4, dtype="uint8") as ds:
        ds.write(np.zeros((4, 64, 64), np.uint8))
    tiles["png"] = png
    return tiles


EXPECTED = {
    "corrupt": "not a readable raster",
    "nocrs": "has no coordinate reference system",
    "bands": "model expects 4 bands",
    "small": "raster is 20 x 20 pixels",
    "dtype": "data type float32 is not supported",
    "png": "has no coordinate reference system",
}


def test_bad_inputs_fail_per_file_and_keep_going(
    classifier: Path, bad_tiles: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    base = ["infer", "--model", str(classifier), "--input", str(bad_tiles["good"].parent)]
    flags = ["--no-track", "--no-progress"]
    assert main([*base, "--input", str(bad_tiles["png"]), "--output", str(out), *flags, "--keep-going"]) == 1
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("satcnn: error: ")]
    assert len(lines) == len(EXPECTED)
    for key, problem in EXPECTED.items():
        assert any(ln.startswith(f"satcnn: error: {bad_tiles[key]}: {problem}") for ln in lines), (key, err)
    assert "Traceback" not in err
    assert sorted(p.name for p in out.glob("*.tif")) == ["a_good.tif", "z_good.tif"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert {Path(f["input"]).name for f in manifest["failures"]} == {bad_tiles[k].name for k in EXPECTED}
    with (out / "class_fractions.csv").open() as f:
        assert sorted(r["tile"] for r in csv.DictReader(f)) == ["a_good", "z_good"]

    # without --keep-going the first failure stops the run (z_good is never reached)
    out2 = tmp_path / "out2"
    assert main([*base, "--output", str(out2), *flags]) == 1
    err_lines = capsys.readouterr().err.strip().splitlines()
    assert err_lines[-1].startswith(f"satcnn: error: {bad_tiles['corrupt']}: not a readable raster")
    assert sorted(p.name for p in out2.glob("*.tif")) == ["a_good.tif"]
    with pytest.raises(RasterError, match=r"b_corrupt\.tif: not a readable raster"):
        run_inference(
            InferenceOptions(
                classifier, bad_tiles["good"].parent, tmp_path / "out3", track=False, progress=False
            )
        )


def test_usage_errors_exit_2(classifier: Path, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["infer", "--model", str(classifier), "--output", str(tmp_path)])  # no --input
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "infer",
                "--model",
                str(classifier),
                "--input",
                str(NAIP),
                "--output",
                str(tmp_path),
                "--shard-index",
                "2",
                "--num-shards",
                "2",
            ]
        )
    assert exc.value.code == 2


# -- (b, g) MLflow: a real debug fit, runs:/ and models:/ URIs, the tracked inference -------------------
@pytest.fixture(scope="module")
def fitted(shared_fit: TrackedFit, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """The session's debug SAT-6 fit (tests/conftest.py) in a copy of its store, in its own working
    directory: (workdir, training run id). MLflow's tracking URI is left at the copy, as a fit would."""
    work = tmp_path_factory.mktemp("fit")
    copy_store(shared_fit.workdir / "mlflow.db", work / "mlflow.db")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.setenv("SATCNN_CACHE", str(work / "cache"))
        mlflow.set_tracking_uri(f"sqlite:///{work / 'mlflow.db'}")
        assert shared_fit.code == 0
        client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
        exp = client.get_experiment_by_name("deepsat-sat6")
        assert exp is not None
        (run,) = client.search_runs([exp.experiment_id])
        yield work, run.info.run_id


@pytest.mark.slow
def test_load_from_mlflow_run_and_registry(fitted: tuple[Path, str], monkeypatch: pytest.MonkeyPatch) -> None:
    work, run_id = fitted
    monkeypatch.chdir(work)
    lm = load_model(f"runs:/{run_id}/checkpoints/best.ckpt")
    assert lm.source_run_id == run_id and lm.task == "classification"
    assert lm.classes[-1] == "water" and lm.patch_size == 28 and lm.bands == ["red", "green", "blue", "nir"]
    assert load_model(f"runs:/{run_id}").meta == lm.meta  # omitted path: checkpoints/best.ckpt
    # a registered version whose source is the run's checkpoints folder
    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    client.create_registered_model("sat6")
    mv = client.create_model_version("sat6", f"runs:/{run_id}/checkpoints", run_id=run_id)
    client.set_registered_model_alias("sat6", "champion", mv.version)
    for uri in (f"models:/sat6/{mv.version}", "models:/sat6@champion"):
        reg = load_model(uri)
        assert reg.source_run_id == run_id and reg.path.name == "best.ckpt" and reg.meta == lm.meta
    from satcnn.errors import ModelError

    with pytest.raises(ModelError, match="registered model models:/nope/1 not found"):
        load_model("models:/nope/1")


@pytest.mark.slow
def test_inference_run_is_tracked_with_manifest(
    fitted: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work, run_id = fitted
    monkeypatch.chdir(work)
    tile = crop(NAIP, tmp_path / "tile.tif", 200)
    out = tmp_path / "out"
    report = run_inference(InferenceOptions(f"runs:/{run_id}", [tile], out, progress=False, stride=4))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"]["uri"] == f"runs:/{run_id}" and manifest["model"]["source_run_id"] == run_id
    assert Path(manifest["model"]["path"]).name == "best.ckpt"
    assert manifest["model"]["meta"]["classes"][-1] == "water"
    assert manifest["inputs"] == [str(tile)] and manifest["parameters"]["stride"] == 4
    assert manifest["outputs"][0]["outputs"] == [str(out / "tile.tif")]
    assert {"satcnn", "torch", "rasterio", "mlflow"} <= set(manifest["versions"])
    assert manifest["timings"]["tiles"] == 1 and manifest["failures"] == []
    with rasterio.open(out / "tile.tif") as ds:
        assert ds.width == (200 - 28) // 4 + 1  # stride 4 = the FCN's native stride
    # the MLflow run, read back
    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    exp = client.get_experiment_by_name("satcnn-inference")
    assert exp is not None
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"  # MLflow UI's training view
    run = client.get_run(report.mlflow_run_id)  # type: ignore[arg-type]
    assert run.info.experiment_id == exp.experiment_id and run.info.status == "FINISHED"
    assert run.data.tags["satcnn.source_run_id"] == run_id
    assert run.data.params["stride"] == "4" and run.data.params["model_uri"] == f"runs:/{run_id}"
    assert run.data.metrics["tiles"] == 1 and run.data.metrics["megapixels_per_s"] > 0
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"manifest.json", "class_fractions.csv"} <= names


# -- (h) shards ---------------------------------------------------------------
def _cli(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    full_env = {**os.environ, **(env or {}), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", INFER, *args], env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


# The SIGKILL-and-resume test is tests/inference/test_infer_kill.py: it kills `python -m satcnn infer` at a
# deterministic point (just before a final rename) instead of polling for a file and racing the run.


@pytest.mark.slow
def test_two_ranks_split_the_inputs(classifier: Path, tmp_path: Path) -> None:
    tiles = tmp_path / "tiles"
    tiles.mkdir()
    for i in range(5):
        crop(NAIP, tiles / f"tile{i}.tif", 64 + 8 * i)
    out = tmp_path / "out"
    args = [
        "--model",
        str(classifier),
        "--input",
        str(tiles),
        "--output",
        str(out),
        "--no-track",
        "--no-progress",
    ]
    procs = [_cli(args, {"RANK": str(r), "WORLD_SIZE": "2"}) for r in (0, 1)]
    for p in procs:
        _, err = p.communicate(timeout=240)
        assert p.returncode == 0, err.decode()
    done = []
    for r in (0, 1):
        manifest = json.loads((out / f"manifest.rank{r}.json").read_text())
        assert manifest["shard"] == {"index": r, "count": 2}
        done.append({Path(o["input"]).stem for o in manifest["outputs"] if o["status"] == "done"})
    assert done[0] == {"tile0", "tile2", "tile4"} and done[1] == {"tile1", "tile3"}
    assert sorted(p.stem for p in out.glob("*.tif")) == [f"tile{i}" for i in range(5)]
    assert not (out / "manifest.json").exists()
    # a rerun without shards computes nothing and writes the full class_fractions.csv
    report = run_inference(InferenceOptions(classifier, tiles, out, track=False, progress=False))
    assert len(report.skipped) == 5 and not report.done
    with (out / "class_fractions.csv").open() as f:
        assert [r["tile"] for r in csv.DictReader(f)] == [f"tile{i}" for i in range(5)]


def test_rerun_recomputes_outputs_of_other_settings(tmp_path: Path) -> None:
    ckpt = pan_road_checkpoint(tmp_path / "road.ckpt")
    tile = crop(VEGAS, tmp_path / "tile.tif", 96)
    out = tmp_path / "out"
    kw: dict[str, object] = {"track": False, "progress": False, "window": 64, "margin": 8}
    first = run_inference(InferenceOptions(ckpt, tile, out, output_type="prob_uint8", **kw))  # type: ignore[arg-type]
    assert [r.status for r in first.results] == ["done"]
    again = run_inference(InferenceOptions(ckpt, tile, out, output_type="prob_uint8", **kw))  # type: ignore[arg-type]
    assert [r.status for r in again.results] == ["skipped"]
    mask = run_inference(InferenceOptions(ckpt, tile, out, output_type="mask", threshold=0.5, **kw))  # type: ignore[arg-type]
    assert [r.status for r in mask.results] == ["done"]
    with rasterio.open(out / "tile.tif") as ds:
        assert ds.tags()["SATCNN_OUTPUT"] == "mask"
        assert set(np.unique(ds.read(1))) <= {0, 1, 255}
    other = run_inference(InferenceOptions(ckpt, tile, out, output_type="mask", threshold=0.7, **kw))  # type: ignore[arg-type]
    assert [r.status for r in other.results] == ["done"]
    with rasterio.open(out / "tile.tif") as ds:
        assert float(ds.tags()["SATCNN_THRESHOLD"]) == 0.7


def test_shard_from_env_uses_global_ranks_only() -> None:
    assert shard_from_env({"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1"}) == (3, 8)
    assert shard_from_env({"SLURM_PROCID": "2", "SLURM_STEP_NUM_TASKS": "4", "SLURM_NTASKS": "4"}) == (2, 4)
    # sbatch without srun: the allocation's task count is no shard; one node's local rank neither
    assert shard_from_env({"SLURM_PROCID": "0", "SLURM_NTASKS": "4"}) == (0, 1)
    assert shard_from_env({"LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}) == (0, 1)
    with pytest.raises(ConfigError, match="not integers"):
        shard_from_env({"RANK": "a", "WORLD_SIZE": "2"})


def test_device_is_checked_and_pinned_to_the_local_rank(
    classifier: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert resolve_device("cpu", {"LOCAL_RANK": "1"}) == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="CUDA is not available"):
        run_inference(
            InferenceOptions(classifier, NAIP, tmp_path / "out", device="cuda", track=False, progress=False)
        )
    assert not (tmp_path / "out").exists()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("cuda", {"LOCAL_RANK": "3"}) == "cuda:3"
    assert resolve_device("cuda", {}) == "cuda"
    assert resolve_device("cuda:1", {"LOCAL_RANK": "3"}) == "cuda:1"


def test_folder_listing_skips_hidden_temporaries(tmp_path: Path) -> None:
    tiles = tmp_path / "tiles"
    tiles.mkdir()
    for name in ("b.tif", "a.TIFF", ".b.tif.tmp.tif", ".b.tif.cog.tmp.tif", "notes.txt"):
        (tiles / name).write_bytes(b"")
    assert [p.name for p in resolve_inputs([tiles])] == ["a.TIFF", "b.tif"]


@pytest.mark.slow
def test_tracking_failure_after_create_run_marks_the_run_failed(
    classifier: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("artifact store unreachable")

    monkeypatch.setattr(MlflowClient, "log_artifact", broken)
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tile = crop(NAIP, tmp_path / "tile.tif", 64)
    report = run_inference(
        InferenceOptions(classifier, tile, tmp_path / "out", progress=False, tracking_uri=store)
    )
    assert report.ok and report.mlflow_run_id is None  # the outputs stand, the tracking failed
    client = MlflowClient(store)
    exp = client.get_experiment_by_name("satcnn-inference")
    assert exp is not None
    runs = client.search_runs([exp.experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]
    assert runs[0].data.metrics["tiles"] == 1


# -- outputs know their model by content; output names cannot collide ----------------------------------
def _statuses(out: Path) -> list[str]:
    return [o["status"] for o in json.loads((out / "manifest.json").read_text())["outputs"]]


def _infer(model: str | Path, tile: Path, out: Path, *extra: str) -> int:
    args = ["--model", str(model), "--input", str(tile), "--output", str(out), *extra]
    return main(["infer", *args, "--no-track", "--no-progress"])


def test_rerun_recomputes_when_the_weights_change_not_the_path(tmp_path: Path) -> None:
    ckpt = write_checkpoint(tmp_path / "models" / "sat6.ckpt", seed=0)
    tile = crop(NAIP, tmp_path / "tile.tif", 96)
    out = tmp_path / "out"
    cmap = out / "tile.tif"
    assert _infer(ckpt, tile, out) == 0 and _statuses(out) == ["done"]
    with rasterio.open(cmap) as ds:
        first_digest = ds.tags().get("SATCNN_MODEL_DIGEST")
    assert _infer(ckpt, tile, out) == 0 and _statuses(out) == ["skipped"]

    # retrained: other weights at the same path -> the old class map is stale
    write_checkpoint(ckpt, seed=1)
    assert _infer(ckpt, tile, out) == 0 and _statuses(out) == ["done"]
    fresh = tmp_path / "fresh"
    assert _infer(ckpt, tile, fresh) == 0
    np.testing.assert_array_equal(_read(cmap)[0], _read(fresh / "tile.tif")[0])
    with rasterio.open(cmap) as ds:
        new_digest = ds.tags()["SATCNN_MODEL_DIGEST"]
    assert new_digest != first_digest and str(first_digest).startswith("sha256:")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"]["digest"] == new_digest

    # the same weights under another path (or URI) are the same model: nothing to recompute
    copy = tmp_path / "elsewhere" / "copy.ckpt"
    copy.parent.mkdir()
    copy.write_bytes(ckpt.read_bytes())
    os.utime(cmap, ns=(10**18, 10**18))
    assert _infer(copy, tile, out) == 0 and _statuses(out) == ["skipped"]
    assert cmap.stat().st_mtime_ns == 10**18


@pytest.mark.slow
def test_rerun_recomputes_when_the_alias_moves_to_other_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client.create_registered_model("sat6")
    for seed in (0, 1):
        folder = tmp_path / f"v{seed}"
        write_checkpoint(folder / "best.ckpt", seed=seed)
        client.create_model_version("sat6", str(folder))
    client.set_registered_model_alias("sat6", "champion", "1")
    tile = crop(NAIP, tmp_path / "tile.tif", 64)
    out = tmp_path / "out"
    assert _infer("models:/sat6@champion", tile, out) == 0 and _statuses(out) == ["done"]
    assert _infer("models:/sat6@champion", tile, out) == 0 and _statuses(out) == ["skipped"]
    client.set_registered_model_alias("sat6", "champion", "2")
    assert _infer("models:/sat6@champion", tile, out) == 0 and _statuses(out) == ["done"]
    with rasterio.open(out / "tile.tif") as ds:
        assert ds.tags()["SATCNN_MODEL_VERSION"] == "sat6/2"
        assert ds.tags()["SATCNN_MODEL"] == "models:/sat6@champion"


@pytest.mark.slow
def test_both_outputs_colliding_with_another_input_fail_up_front(tmp_path: Path) -> None:
    ckpt = pan_road_checkpoint(tmp_path / "road.ckpt")
    tiles = tmp_path / "tiles"
    tiles.mkdir()
    crop(VEGAS, tiles / "a.tif", 64)
    crop(VEGAS, tiles / "a_mask.tif", 64)
    out = tmp_path / "out"
    args = ["--model", str(ckpt), "--input", str(tiles), "--output", str(out), "--output-type", "both"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "satcnn", "infer", *args, "--no-track", "--no-progress"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("satcnn: error: ")]
    assert len(errors) == 1, proc.stderr
    assert str(tiles / "a.tif") in errors[0] and str(tiles / "a_mask.tif") in errors[0]
    assert str(out / "a_mask.tif") in errors[0]
    assert "Traceback" not in proc.stderr
    assert not out.exists()  # nothing written
    # one output per input cannot collide: the same folder runs
    assert _infer(ckpt, tiles, out, "--output-type", "mask") == 0
    assert sorted(p.name for p in out.glob("*.tif")) == ["a.tif", "a_mask.tif"]


def test_options_are_checked_once_and_the_cli_reports_the_flag(
    classifier: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(OptionError, match=r"threshold must be in \[0, 1\], got 1.5") as exc:
        InferenceOptions(classifier, NAIP, tmp_path / "out", threshold=1.5)
    assert isinstance(exc.value, ConfigError) and exc.value.option == "threshold"
    with pytest.raises(OptionError, match="output_type must be one of"):
        InferenceOptions(classifier, NAIP, tmp_path / "out", output_type="probability")  # type: ignore[arg-type]
    with pytest.raises(OptionError, match="shard_index must be given together with num_shards"):
        InferenceOptions(classifier, NAIP, tmp_path / "out", shard_index=0)
    for flag, value, problem in [
        ("--window", "0", "argument --window: must be >= 1, got 0"),
        ("--margin", "-1", "argument --margin: must be >= 0, got -1"),
        ("--threshold", "2", "argument --threshold: must be in [0, 1], got 2.0"),
    ]:
        with pytest.raises(SystemExit) as sysexit:
            _infer(classifier, NAIP, tmp_path / "out", flag, value)
        assert sysexit.value.code == 2
        assert problem in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_weights_digest_follows_the_weights_only() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(4, 8, 3), torch.nn.BatchNorm2d(8))

    def digest_of(m: torch.nn.Module) -> str:
        return weights_digest({f"{WEIGHTS_PREFIX}{k}": v for k, v in m.state_dict().items()})

    digest = digest_of(model)
    assert digest == digest_of(model.to(memory_format=torch.channels_last))
    twin = torch.nn.Sequential(torch.nn.Conv2d(4, 8, 3), torch.nn.BatchNorm2d(8))
    twin.load_state_dict(model.state_dict())
    assert digest_of(twin) == digest
    with torch.no_grad():
        twin[0].weight[0, 0, 0, 0] += 1e-3  # type: ignore[index]
    assert digest_of(twin) != digest
