"""``satcnn infer --engine ray`` on a real Ray cluster on loopback: a head and two worker nodes.

One cluster (``ray.cluster_utils.Cluster``) serves the whole module and is stopped at its end with
every process it started (checked). The CLI joins it with ``--address``; runs that need to act
during the job (a node killed) drive it from this process. The local runner's outputs are the
reference: the Ray engine must write the same bytes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pyarrow.parquet as pq
import pyogrio
import pytest
import rasterio
from mlflow import MlflowClient

from satcnn.errors import RasterError
from satcnn.inference import InferenceOptions, run_inference
from satcnn.inference.ray_engine import RayEngine
from tests.factories import NAIP, ROOT, SAT6_TIFS, crop, free_port, satcnn, write_checkpoint

ROAD = {"window": 64, "margin": 8, "output_type": "both", "vector": True}
"""Windows of 64 px on a 160 x 200 raster: 12 batches, more than one per worker."""


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """A head (2 CPUs) and two worker nodes (1 CPU each); every process stopped at the end."""
    import ray
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "include_dashboard": False})
    c.workers = [c.add_node(num_cpus=1) for _ in range(2)]
    c.wait_for_nodes()
    started = {p.pid for p in _descendants(c)}
    try:
        yield c
    finally:
        started |= {p.pid for p in _descendants(c)}
        ray.shutdown()
        c.shutdown()
        alive = [p for p in _alive(started)]
        deadline = time.monotonic() + 20
        while alive and time.monotonic() < deadline:
            time.sleep(0.5)
            alive = _alive(started)
        assert not alive, f"Ray processes left running: {[(p.pid, p.name()) for p in alive]}"


def _descendants(c: Any) -> list[psutil.Process]:
    procs = []
    for node in [c.head_node, *c.worker_nodes]:
        for infos in node.all_processes.values():
            for info in infos:
                try:
                    p = psutil.Process(info.process.pid)
                    procs += [p, *p.children(recursive=True)]
                except psutil.NoSuchProcess:
                    pass
    return procs


def _alive(pids: set[int]) -> list[psutil.Process]:
    out = []
    for pid in pids:
        try:
            p = psutil.Process(pid)
            if p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


@pytest.fixture(scope="module")
def road(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("road")
    ckpt = write_checkpoint(
        d / "road.ckpt",
        name="unet",
        kwargs={"in_channels": 4, "num_classes": 1, "base_filters": 4, "depth": 2},
        task="segmentation",
        patch_size=32,
        std=[5.0] * 4,
    )
    return ckpt, crop(NAIP, d / "tile.tif", 160, 200)


def _cli(cluster: Any, *args: Any) -> subprocess.CompletedProcess[str]:
    return satcnn(
        "infer",
        "--engine",
        "ray",
        "--address",
        cluster.address,
        "--no-track",
        "--no-progress",
        *map(str, args),
    )


def _same_files(a: Path, b: Path, names: list[str]) -> None:
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def _same_manifest(a: Path, b: Path) -> None:
    """The manifests agree but for timings, the output folder and the engine's parameters."""
    ma, mb = (json.loads((d / "manifest.json").read_text()) for d in (a, b))
    for m in (ma, mb):
        del m["timings"]
        for r in m["outputs"]:
            r["seconds"] = 0
            r["outputs"] = [Path(o).name for o in r["outputs"]]
        m["parameters"] = {
            k: v
            for k, v in m["parameters"].items()
            if "ray" not in k and k not in ("engine", "workers", "gpus_per_worker", "cpus_per_reader")
        }
    assert ma == mb


@pytest.mark.slow
def test_road_outputs_equal_the_local_runners_and_a_rerun_skips(
    cluster: Any, road: tuple[Path, Path], tmp_path: Path
) -> None:
    ckpt, tile = road
    local, remote = tmp_path / "local", tmp_path / "ray"
    run_inference(InferenceOptions(ckpt, tile, local, track=False, progress=False, **ROAD))
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in ROAD.items() if k != "vector"]
    done = _cli(
        cluster, "--model", ckpt, "--input", tile, "--output", remote, "--workers", 2, "--vector", *flags
    )
    assert done.returncode == 0, done.stderr
    assert "1 tiles done, 0 skipped, 0 failed" in done.stdout
    _same_files(local, remote, ["tile.tif", "tile_mask.tif"])
    for layer in ("lines", "nodes"):
        assert pyogrio.read_dataframe(local / "tile_roads.gpkg", layer=layer).equals(
            pyogrio.read_dataframe(remote / "tile_roads.gpkg", layer=layer)
        )
    _same_manifest(local, remote)
    params = json.loads((remote / "manifest.json").read_text())["parameters"]
    assert (params["engine"], params["workers"]) == ("ray", 2)
    index = pq.read_table(remote / "window_index.parquet").to_pylist()
    assert sorted(r["batch"] for r in index) == list(range(12))  # the local plan's batches
    assert {r["src"] for r in index} == {str(tile)}

    before = (remote / "tile.tif").stat().st_mtime_ns
    again = _cli(cluster, "--model", ckpt, "--input", tile, "--output", remote, "--vector", *flags)
    assert again.returncode == 0, again.stderr
    assert "0 tiles done, 1 skipped, 0 failed" in again.stdout
    assert (remote / "tile.tif").stat().st_mtime_ns == before
    assert pq.read_table(remote / "window_index.parquet").num_rows == 0  # this run's: nothing to compute
    assert "Token authentication" not in done.stderr + again.stderr  # Ray's warning at every start


def _mixed_folder(root: Path) -> Path:
    """The 48 real SAT-6 patches in per-class folders (one label each), three larger NAIP crops among
    them (class maps, which split the runs of label tiles), and a bad patch."""
    for src in sorted((SAT6_TIFS / "trn").glob("*/*.tif")):
        (root / src.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, root / src.parent.name / src.name)
    for i in range(3):
        crop(NAIP, root / "trees" / f"naip{i}.tif", 120 + 28 * i, 150)
    (root / "roads" / "0_bad.tif").write_bytes(b"II*\x00" + b"\x00" * 60)  # a header, nothing readable
    return root


@pytest.mark.slow
def test_class_maps_and_labels_equal_the_local_runners(cluster: Any, tmp_path: Path) -> None:
    ckpt = write_checkpoint(tmp_path / "sat6.ckpt")
    inputs = _mixed_folder(tmp_path / "in")
    opts = {
        "stride": 14,
        "block": 56,
        "track": False,
        "progress": False,
        "keep_going": True,
        "allow_no_crs": True,
    }
    local = run_inference(InferenceOptions(ckpt, inputs, tmp_path / "local", **opts))
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    ray_opts = {**opts, "track": True, "tracking_uri": store}
    options = InferenceOptions(
        ckpt, inputs, tmp_path / "ray", engine="ray", address=cluster.address, workers=2, **ray_opts
    )
    remote = run_inference(options, RayEngine(options))
    assert [r.status for r in remote.results] == [r.status for r in local.results]
    assert [str(r.input) for r in remote.failures] == [str(inputs / "roads" / "0_bad.tif")]
    run = MlflowClient(store).get_run(remote.mlflow_run_id)  # type: ignore[arg-type]
    assert run.data.params["engine"] == "ray" and run.data.metrics["tiles"] == 51
    assert run.data.metrics["ray_model_megapixels_per_s"] > 0 and run.data.metrics["ray_windows"] > 51
    assert [r.class_fractions for r in remote.results] == [r.class_fractions for r in local.results]
    maps = [f"naip{i}.tif" for i in range(3)]
    _same_files(tmp_path / "local", tmp_path / "ray", [*maps, "class_fractions.csv", "predictions.csv"])
    _same_files(tmp_path / "local", tmp_path / "ray", ["metrics.json"])
    _same_manifest(tmp_path / "local", tmp_path / "ray")
    index = pq.read_table(tmp_path / "ray" / "window_index.parquet").to_pylist()
    tiles = [r for r in index if r["kind"] == "tile"]
    assert len(tiles) == 48 and {Path(r["src"]).name for r in index if r["kind"] == "windows"} == set(maps)
    assert len({r["batch"] for r in tiles}) >= 3  # the class maps and the bad patch split the batches


@pytest.mark.slow
def test_a_bad_tile_is_reported_once(cluster: Any, road: tuple[Path, Path], tmp_path: Path) -> None:
    ckpt, _ = road
    inputs = tmp_path / "in"
    inputs.mkdir()
    tile = crop(NAIP, tmp_path / "tile.tif", 96)  # 4 windows
    for name in ("a", "c"):
        (inputs / f"{name}.tif").write_bytes(tile.read_bytes())
    (inputs / "b.tif").write_bytes(tile.read_bytes()[:2000])  # cut short: a tile bad in itself
    outputs = {}
    for keep_going in (False, True):
        out = tmp_path / f"ray{keep_going}"
        extra = ["--keep-going"] if keep_going else []
        remote = _cli(
            cluster,
            "--model",
            ckpt,
            "--input",
            inputs,
            "--output",
            out,
            "--window",
            64,
            "--margin",
            8,
            *extra,
        )
        assert remote.returncode == 1, remote.stderr
        errors = [line for line in remote.stderr.splitlines() if line.startswith("satcnn: error:")]
        assert len(errors) == 1 and errors[0].startswith(f"satcnn: error: {inputs / 'b.tif'}: "), (
            remote.stderr
        )
        assert "Traceback" not in remote.stderr
        failures = json.loads((out / "manifest.json").read_text())["failures"]
        assert [f["input"] for f in failures] == [str(inputs / "b.tif")]
        outputs[keep_going] = {p.name for p in out.glob("*.tif")}
    # as on one process: without --keep-going the inputs before the bad one are finished (those after
    # it only when done before its error came back); with it, all the others
    assert "a.tif" in outputs[False] and "b.tif" not in outputs[False]
    assert outputs[True] == {"a.tif", "c.tif"}


def _unreadable_pixels(src: Path, dst: Path) -> Path:
    """``src`` compressed, its pixel data overwritten: the header reads, the pixels do not."""
    with rasterio.open(src) as ds:
        profile, data = {**ds.profile, "compress": "deflate", "tiled": False}, ds.read()
    with rasterio.open(dst, "w", **profile) as ds:
        ds.write(data)
    with rasterio.open(dst) as ds:
        tag = ds.get_tag_item
        blocks = {
            (int(tag("BLOCK_OFFSET_0_0", "TIFF", bidx=b)), int(tag("BLOCK_SIZE_0_0", "TIFF", bidx=b)))
            for b in ds.indexes
        }
    raw = bytearray(dst.read_bytes())
    for offset, size in blocks:
        raw[offset : offset + size] = b"\xff" * size
    dst.write_bytes(bytes(raw))
    return dst


@pytest.mark.slow
def test_labels_stop_at_a_tile_failing_on_a_worker_as_on_one_process(cluster: Any, tmp_path: Path) -> None:
    """Without --keep-going, the tiles after one that fails when read (its header checked fine on the
    driver) get no label, as on one process, though the worker classified their batch."""
    ckpt = write_checkpoint(tmp_path / "sat6.ckpt")
    inputs = tmp_path / "in"
    for src in sorted((SAT6_TIFS / "trn").glob("[bw]*/*.tif")):  # barren_land, building, water
        (inputs / src.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, inputs / src.parent.name / src.name)
    _unreadable_pixels(SAT6_TIFS / "trn" / "barren_land" / "2.tif", inputs / "barren_land" / "5.tif")
    opts: dict[str, Any] = {
        "bands": "1,2,3,4",
        "per_tile": True,
        "allow_no_crs": True,
        "track": False,
        "progress": False,
    }
    local_out, ray_out = tmp_path / "local", tmp_path / "ray"
    with pytest.raises(RasterError, match=r"5\.tif"):
        run_inference(InferenceOptions(ckpt, inputs, local_out, **opts))
    options = InferenceOptions(ckpt, inputs, ray_out, engine="ray", address=cluster.address, **opts)
    with pytest.raises(RasterError, match=r"5\.tif"):
        run_inference(options, RayEngine(options))
    assert len((local_out / "predictions.csv").read_text().splitlines()) == 1 + 7  # 12, 13, 2, 20, 22, 23, 26
    _same_files(local_out, ray_out, ["predictions.csv", "metrics.json"])


@pytest.mark.slow
def test_a_worker_node_killed_mid_run_changes_nothing(
    cluster: Any, road: tuple[Path, Path], tmp_path: Path
) -> None:
    ckpt, _ = road
    tile = crop(NAIP, tmp_path / "big.tif", 288)  # 36 batches
    opts: dict[str, Any] = {"window": 64, "margin": 8, "track": False, "progress": False}
    run_inference(InferenceOptions(ckpt, tile, tmp_path / "local", **opts))
    options = InferenceOptions(
        ckpt, tile, tmp_path / "ray", engine="ray", address=cluster.address, workers=2, **opts
    )
    import ray

    ray.init(address=cluster.address, log_to_driver=False)  # here: the run's thread keeps it
    outcome: dict[str, Any] = {}
    job = threading.Thread(target=lambda: outcome.update(report=run_inference(options, RayEngine(options))))
    job.start()
    partial = tmp_path / "ray" / ".big.tif.tmp.tif"
    deadline = time.monotonic() + 120
    while not partial.exists() and job.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert partial.exists(), "the run ended before any window was written"
    cluster.remove_node(cluster.workers[0], allow_graceful=False)  # with its worker processes
    job.join(timeout=300)
    ray.shutdown()
    assert not job.is_alive()
    assert [r.status for r in outcome["report"].results] == ["done"]
    _same_files(tmp_path / "local", tmp_path / "ray", ["big.tif"])


def test_an_address_where_nothing_listens_is_one_line_at_once(
    road: tuple[Path, Path], tmp_path: Path
) -> None:
    ckpt, tile = road
    address = f"127.0.0.1:{free_port()}"  # Ray alone retries it for about 14 minutes
    done = satcnn(
        "infer", "--model", ckpt, "--input", tile, "--output", tmp_path / "out", "--engine", "ray",
        "--address", address, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"satcnn: error: cannot reach the Ray cluster at '{address}': Connection refused (is it running?)"
    ]
    assert not (tmp_path / "out").exists()  # no model loaded, no index written


def test_auto_with_a_ray_address_where_nothing_listens_is_one_line_at_once(
    road: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ckpt, tile = road
    address = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("RAY_ADDRESS", address)  # what Ray joins for --address auto
    done = satcnn(
        "infer", "--model", ckpt, "--input", tile, "--output", tmp_path / "out", "--engine", "ray",
        "--address", "auto", timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"satcnn: error: cannot reach the Ray cluster at '{address}': Connection refused (is it running?)"
    ]
    assert not (tmp_path / "out").exists()


def test_without_ray_the_engine_is_one_line(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['ray'] = None; from satcnn.cli import main; sys.exit(main(['infer', "
        "'--model', 'm.ckpt', '--input', 'x.tif', '--output', 'o', '--engine', 'ray']))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "satcnn: error: --engine ray needs Ray, which is not installed: pip install 'satcnn[ray]'"
    ]
