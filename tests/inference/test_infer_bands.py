"""`satcnn infer --bands/--rescale` on a generated corpus: RGB + alpha, BGRN with band descriptions,
8 bands, uint16 holding 11-bit values, float64 with NaN nodata, and an RGB + alpha-tagged NIR band.

Each case gives either an output on the input's grid or one error line naming the file and the band
or problem. A road model is run on a uint8 scene and on copies of it in other band orders, band
counts and data types.
"""

from __future__ import annotations

import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import torch

from satcnn.inference import InferenceOptions, run_inference
from satcnn.inference.cli import infer_main
from satcnn.io.radiometry import raster_percentiles
from satcnn.io.reader import WindowReader
from satcnn.models.checkpoint import CheckpointMeta, ModelSpec, save_checkpoint
from satcnn.models.normalize import Normalize
from satcnn.models.registry import create_model
from tests import factories
from tests.factories import RGBA, road_bands

# 1 m pixels; uint8 bands 1-3 tagged R, G, B as synth-roads writes them
write_tif = partial(factories.write_tif, res=1.0, rgb=True)

RGBN = ["red", "green", "blue", "nir"]
WV3 = ["coastal", "blue", "green", "yellow", "red", "rededge", "nir1", "nir2"]
TOLERANCE = 0.02
"""Largest road-probability difference allowed between a percentile-rescaled uint16 copy of a
uint8 scene and the scene itself (the uint16 copy rounds 255 levels onto 2047, and the output is
quantised to 1/254)."""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The corpus and a road model whose record holds the uint8 scene's statistics."""
    d = tmp_path_factory.mktemp("corpus")
    tiles = d / "tiles"
    rgbn = road_bands(64, 64, seed=3)
    rng = np.random.default_rng(9)
    u16 = np.round(rgbn.astype(np.float64) * 2047 / 255).astype(np.uint16)
    f64 = u16.astype(np.float64)
    f64[:, :16, :24] = np.nan
    wv3 = rng.integers(0, 255, size=(8, 64, 64)).astype(np.uint8)
    wv3[[4, 2, 1, 6]] = rgbn
    alpha = rgbn.copy()
    alpha[3] = 255
    paths = {
        "rgbn": write_tif(tiles / "a_rgbn.tif", rgbn, descriptions=RGBN),
        "bgrn": write_tif(
            tiles / "b_bgrn.tif", rgbn[[2, 1, 0, 3]], descriptions=["blue", "green", "red", "nir"]
        ),
        "wv3": write_tif(tiles / "c_wv3.tif", wv3, descriptions=WV3),
        "eight": write_tif(tiles / "d_eight.tif", wv3),
        "rgb_alpha": write_tif(tiles / "e_rgb_alpha.tif", alpha, colorinterp=RGBA),
        "uint16": write_tif(tiles / "f_uint16.tif", u16),
        "float64": write_tif(tiles / "g_float64.tif", f64, nodata=float("nan")),
        "sat6_like": write_tif(tiles / "h_sat6_like.tif", rgbn, colorinterp=RGBA),
    }
    with rasterio.open(paths["rgbn"]) as ds:
        pcts = raster_percentiles(WindowReader(ds))
    flat = rgbn.reshape(4, -1).astype(np.float64)
    meta = CheckpointMeta(
        task="segmentation",
        model=ModelSpec("unet", {"in_channels": 4, "num_classes": 1, "base_filters": 4, "depth": 2}),
        bands=RGBN,
        mean=flat.mean(axis=1).tolist(),
        std=flat.std(axis=1).tolist(),
        classes=["background", "road"],
        patch_size=32,
        input_dtype="uint8",
        band_sources=[1, 2, 3, 4],
        band_colorinterp=["red", "green", "blue", "undefined"],
        percentiles=pcts,
    )
    paths["model"] = save_checkpoint(d / "roads.ckpt", _responsive(meta, rgbn), meta)
    return paths


def _responsive(meta: CheckpointMeta, image: np.ndarray) -> torch.nn.Module:
    """A seeded U-Net whose logits on ``image`` are centred with a std of 2, so that its road
    probabilities span most of [0, 1] (an untrained one answers about 0.40 +- 0.001 everywhere)."""
    torch.manual_seed(0)
    net = create_model("unet", **meta.model.kwargs).eval()
    norm = Normalize.from_stats(meta.mean, meta.std)
    with torch.no_grad():
        z = net(norm(torch.from_numpy(image.astype(np.float32))[None]))
        k = 2.0 / float(z.std())
        net.head.weight.mul_(k)
        net.head.bias.mul_(k).sub_(k * float(z.median()))
    return net


def _satcnn(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "satcnn", "infer", *args, "--no-track", "--no-progress"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def _prob(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    with rasterio.open(path) as ds:
        return ds.read(1), {"crs": ds.crs, "transform": ds.transform, "shape": ds.shape}


def _grid(path: Path) -> dict[str, Any]:
    with rasterio.open(path) as ds:
        return {"crs": ds.crs, "transform": ds.transform, "shape": ds.shape}


@pytest.mark.slow
def test_default_band_rule_over_the_corpus(corpus: dict[str, Path], tmp_path: Path) -> None:
    """One run, --keep-going: band orders are read by description, bad bands and types are refused."""
    out = tmp_path / "out"
    proc = _satcnn(
        "--model",
        str(corpus["model"]),
        "--input",
        str(corpus["rgbn"].parent),
        "--output",
        str(out),
        "--keep-going",
    )
    assert proc.returncode == 1, proc.stderr
    ref, grid = _prob(out / "a_rgbn.tif")
    assert grid == _grid(corpus["rgbn"]) and ref.std() > 0.1 * 254  # the model responds to the image
    for case in ("bgrn", "wv3", "sat6_like"):  # reordered by description (nir = nir1), or alpha-tagged data
        np.testing.assert_array_equal(_prob(out / corpus[case].name)[0], ref, err_msg=case)
    assert (
        "h_sat6_like.tif: band 4 (alpha) is tagged alpha but holds varying values; using it as data"
        in proc.stderr
    )
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("satcnn: error: ")]
    expected = {
        "eight": "model expects 4 bands (red, green, blue, nir); file has 8 and the extra ones are not "
        "alpha. Select the bands with `satcnn infer --bands`",
        "rgb_alpha": "band 4 (alpha) holds only the value 255 over the raster's overview",
        "uint16": "data type uint16 is not supported; expected one of uint8 (the model's training data). "
        "Pass --rescale percentile",
        "float64": "data type float64 is not supported",
    }
    assert len(errors) == len(expected), proc.stderr
    for case, problem in expected.items():
        assert any(ln.startswith(f"satcnn: error: {corpus[case]}: {problem}") for ln in errors), (
            case,
            errors,
        )
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".tif") == sorted(
        corpus[c].name for c in ("rgbn", "bgrn", "wv3", "sat6_like")
    )
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporaries left

    # --bands selects from 8 bands by index and lifts the check (exit 0, same probabilities)
    out2 = tmp_path / "out2"
    proc = _satcnn(
        "--model",
        str(corpus["model"]),
        "--input",
        str(corpus["eight"]),
        "--output",
        str(out2),
        "--bands",
        "5,3,2,7",
    )
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(_prob(out2 / "d_eight.tif")[0], ref)


@pytest.mark.slow
def test_percentile_rescale_of_an_11_bit_copy_gives_the_same_roads(
    corpus: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    ref = tmp_path / "ref"
    run_inference(InferenceOptions(corpus["model"], corpus["rgbn"], ref, track=False, progress=False))
    p8 = _prob(ref / "a_rgbn.tif")[0] / 254.0
    assert p8.std() > 0.1 and p8.max() - p8.min() > 0.5  # so TOLERANCE is a real bound
    proc = _satcnn(
        "--model", str(corpus["model"]),
        "--input", str(corpus["uint16"]), "--input", str(corpus["float64"]),
        "--output", str(out), "--rescale", "percentile",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    p16, grid = _prob(out / "f_uint16.tif")
    assert grid == _grid(corpus["uint16"])
    assert np.abs(p16 / 254.0 - p8).max() <= TOLERANCE
    # float64 with NaN nodata: the NaN block is nodata in the output, the rest has probabilities
    pf, grid = _prob(out / "g_float64.tif")
    assert grid == _grid(corpus["float64"])
    assert (pf[:16, :24] == 255).all() and (pf[16:] < 255).all() and (pf[:, 24:] < 255).all()

    # MIN,MAX maps 0-2047 onto a uint8 model's 0-255; `none` feeds raw 11-bit values (far off)
    lib = tmp_path / "lib"
    opts: dict[str, Any] = {"track": False, "progress": False, "overwrite": True}
    run_inference(InferenceOptions(corpus["model"], corpus["uint16"], lib, rescale="0,2047", **opts))
    assert np.abs(_prob(lib / "f_uint16.tif")[0] / 254.0 - p8).max() <= TOLERANCE
    run_inference(InferenceOptions(corpus["model"], corpus["uint16"], lib, rescale="none", **opts))
    assert np.abs(_prob(lib / "f_uint16.tif")[0] / 254.0 - p8).mean() > 0.2
    # an explicit --bands lifts the band check: the user takes the alpha band as NIR
    run_inference(InferenceOptions(corpus["model"], corpus["rgb_alpha"], lib, bands="1,2,3,4", **opts))
    assert _prob(lib / "e_rgb_alpha.tif")[1] == _grid(corpus["rgb_alpha"])


def test_a_rerun_recomputes_outputs_read_with_other_bands_or_rescale(
    corpus: dict[str, Path], tmp_path: Path
) -> None:
    opts: dict[str, Any] = {"track": False, "progress": False}

    def status(**kw: Any) -> str:
        report = run_inference(InferenceOptions(corpus["model"], corpus["rgbn"], tmp_path, **opts, **kw))
        return report.results[0].status

    assert status(bands="1,2,3,4") == "done"
    assert status(bands="1,2,3,4") == "skipped"
    assert status() == "done"  # the default selection is not the explicit one: recomputed
    assert status() == "skipped"
    assert status(rescale="none") == "done"


def test_bands_and_rescale_usage_errors(
    corpus: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--model", str(corpus["model"]), "--input", str(corpus["rgbn"]), "--output", str(tmp_path)]
    for flag, value, problem in [
        ("--rescale", "bogus", "argument --rescale: must be none, percentile or MIN,MAX"),
        ("--rescale", "10,1", "argument --rescale: must be none, percentile or MIN,MAX"),
        ("--bands", "1,red", "argument --bands: must be all indexes or all names"),
    ]:
        with pytest.raises(SystemExit) as exc:
            infer_main([*base, flag, value])
        assert exc.value.code == 2 and problem in capsys.readouterr().err
    # names the file lacks, or a band count the model does not take: one error naming the file
    for spec, problem in [
        ("red,green,blue,swir", "no band is named 'swir'"),
        ("1,2,3", "--bands selects 3 bands"),
    ]:
        assert infer_main([*base, "--bands", spec, "--no-track", "--no-progress"]) == 1
        assert f"satcnn: error: {corpus['rgbn']}: {problem}" in capsys.readouterr().err


def test_a_road_model_trains_on_11_bit_bgrn_scenes_and_infers_them_strictly(tmp_path: Path) -> None:
    """Training reads uint16 directly (bands by index); the record holds the selection and percentiles."""
    import lightning as L

    from satcnn.data.scenes import RoadSceneDataModule
    from satcnn.models.checkpoint import read_checkpoint
    from satcnn.tasks import SegmentationTask

    root = tmp_path / "scenes"
    for i in range(2):
        rgbn = road_bands(96, 96, seed=i).astype(np.uint16) * 8
        write_tif(root / "images" / f"s{i}.tif", rgbn[[2, 1, 0, 3]])
        road = np.abs(np.subtract(*np.indices((96, 96)))) < 4
        write_tif(root / "masks" / f"s{i}.tif", road.astype(np.uint8)[None])
    dm = RoadSceneDataModule(str(root), patch_size=32, batch_size=2, val_overlap=8, bands="3,2,1,4")
    task = SegmentationTask("resunet", {"filters": [4, 8, 16, 32]}, overlay_samples=0)
    trainer = L.Trainer(
        max_steps=1, limit_val_batches=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
    )  # fmt: skip
    trainer.fit(task, datamodule=dm)
    ckpt = tmp_path / "roads.ckpt"
    trainer.save_checkpoint(ckpt)
    meta = read_checkpoint(ckpt).meta
    assert (meta.input_dtype, meta.band_sources) == ("uint16", [3, 2, 1, 4])
    assert meta.band_colorinterp == ["undefined", "undefined", "gray", "undefined"]
    assert len(meta.percentiles) == 4 and 255 < max(p[3] for p in meta.percentiles) <= 2047
    # the same uint16 BGRN layout infers without --bands or --rescale (recorded sources, same type)
    out = tmp_path / "out"
    report = run_inference(
        InferenceOptions(ckpt, root / "images" / "s1.tif", out, track=False, progress=False)
    )
    assert [r.status for r in report.results] == ["done"]
    assert _prob(out / "s1.tif")[1] == _grid(root / "images" / "s1.tif")


def test_strict_mode_refuses_another_value_range_of_the_training_type(tmp_path: Path) -> None:
    """A float model trained on 0-1 reflectance refuses 0-2047 floats unless --rescale says otherwise."""
    from satcnn.errors import RasterError
    from satcnn.inference.input_rule import InputRule

    reflectance = road_bands(64, 64).astype(np.float32) / 255.0
    train = np.percentile(reflectance.reshape(4, -1), [1, 2, 98, 99], axis=1).T.tolist()
    kw: dict[str, Any] = {"dtype": "float32", "percentiles": train}
    rule = InputRule.of(RGBN, [0.3] * 4, [0.1] * 4, **kw)
    same = write_tif(tmp_path / "same.tif", reflectance)
    dn = write_tif(tmp_path / "dn.tif", reflectance * 2047)
    with rasterio.open(same) as ds:
        rule.reader(ds, same)
    with rasterio.open(dn) as ds:
        with pytest.raises(
            RasterError, match=r"dn\.tif: band 1 of the model \(red\) reaches .*--rescale percentile"
        ):
            rule.reader(ds, dn)
        x, _ = (
            InputRule.of(RGBN, [0.3] * 4, [0.1] * 4, rescale="percentile", **kw)
            .reader(ds, dn)
            .read(rasterio.windows.Window(0, 0, 64, 64))
        )
    np.testing.assert_allclose(x, reflectance, atol=1e-4)  # the 2-98% ranges line up again
