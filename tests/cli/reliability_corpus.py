"""The bad-input corpus of issue 12: generated cases, and the subprocess that runs them.

``build_cases(root)`` writes every case's files under ``root`` and returns the cases. The test
(``tests/cli/test_reliability.py``) runs them all in one ``python -m tests.cli.reliability_corpus CASES
RESULTS`` subprocess, which calls ``satcnn.cli.main`` (what ``python -m satcnn`` runs) once per
case with file descriptor 2 captured, so GDAL's own messages are caught too, and an exception
escaping ``main`` is printed as the traceback ``python -m satcnn`` would print. Importing torch,
rasterio and Lightning once instead of once per case keeps the corpus inside the CI budget.

Two cases simulate a full disk in that process (``patch``): the free space ``shutil.disk_usage``
reports, and ``ENOSPC`` from the COG translation.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
import traceback
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import rasterio
import torch
from affine import Affine
from rasterio.enums import ColorInterp
from rasterio.windows import Window

from tests.cli.corpus_outputs import output_cases
from tests.factories import CONFIGS, SAMPLES, SAT6_CSV, write_checkpoint

NAIP = SAMPLES / "naip" / "m_4709963_se_14_1_20200831.tif"
ROAD_KWARGS = {"in_channels": 4, "filters": [4, 8, 16]}
FLAGS = ["--no-track", "--no-progress"]


@dataclass
class Case:
    """One bad (or odd) input and what satcnn must do with it.

    Attributes:
        name: Short id (a row of docs/reliability.md).
        what: What the user gave, in words.
        argv: ``satcnn`` arguments.
        exit: Expected exit status.
        problem: Text the one ``satcnn:`` line must hold (None: no such line, success).
        output: The output folder whose leftovers are checked.
        patch: In-process simulation (``free_1k``, ``enospc``), or None.
    """

    name: str
    what: str
    argv: list[str]
    exit: int
    problem: str | None
    output: str | None = None
    patch: str | None = None
    outputs: list[str] = field(default_factory=list)  # files a success must leave


def _tile(path: Path, size: int = 64, **changes: Any) -> Path:
    """A ``size`` square crop of the NAIP sample (4 bands, uint8, UTM), with profile ``changes``."""
    data = changes.pop("data", None)
    with rasterio.open(NAIP) as ds:
        win = Window(0, 0, size, size)
        pixels = ds.read(window=win) if data is None else data
        profile = {**ds.profile, "width": size, "height": size, "transform": ds.window_transform(win)}
    profile.update(changes)
    colorinterp = profile.pop("colorinterp", None)
    with rasterio.open(path, "w", **profile) as out:
        out.write(pixels.astype(profile["dtype"]))
        if colorinterp:
            out.colorinterp = colorinterp
    return path


def _models(root: Path) -> dict[str, Path]:
    """The good road model and classifier, and a broken model file of every kind."""
    d = root / "models"
    d.mkdir()
    road = write_checkpoint(
        d / "roads.ckpt", name="resunet", kwargs=ROAD_KWARGS, task="segmentation", patch_size=32
    )
    models = {"road": road, "classifier": write_checkpoint(d / "sat6.ckpt")}
    (d / "notes.ckpt").write_text("epoch 12: val_iou 0.61\nbest so far\n")
    (d / "empty.ckpt").write_bytes(b"")
    (d / "cut.ckpt").write_bytes(road.read_bytes()[: road.stat().st_size // 2])
    torch.save({"state_dict": {"w": torch.zeros(1)}}, d / "plain.ckpt")
    raw = torch.load(road, weights_only=True)
    torch.save({**raw, "callbacks": Path("/tmp")}, d / "pickled.ckpt")  # an object: refused
    newer = {**raw, "satcnn": {**raw["satcnn"], "format_version": 99, "satcnn_version": "9.0"}}
    torch.save(newer, d / "newer.ckpt")
    (d / "nockpt").mkdir()
    (d / "nockpt" / "README.txt").write_text("weights are elsewhere\n")
    for p in d.iterdir():
        models.setdefault(p.stem, p)
    return models


def _rasters(root: Path) -> dict[str, Path]:
    """A raster of every odd kind the issue lists."""
    d = root / "tiles"
    d.mkdir()
    t: dict[str, Path] = {"good": _tile(d / "good.tif")}
    (d / "zero.tif").write_bytes(b"")
    t["zero"] = d / "zero.tif"
    whole = _tile(root / "whole.tif", 512)
    (d / "truncated.tif").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    t["truncated"] = d / "truncated.tif"
    png = root / "picture.png"
    with rasterio.open(png, "w", driver="PNG", width=64, height=64, count=4, dtype="uint8") as ds:
        ds.write(np.full((4, 64, 64), 90, np.uint8))
    (d / "renamed_png.tif").write_bytes(png.read_bytes())
    t["renamed_png"] = d / "renamed_png.tif"
    t["no_crs"] = _tile(d / "no_crs.tif", crs=None)
    with rasterio.open(NAIP) as ds:
        rotated = ds.window_transform(Window(0, 0, 64, 64)) * Affine.rotation(20)
    t["rotated"] = _tile(d / "rotated.tif", transform=rotated)
    t["three_bands"] = _tile(d / "three_bands.tif", count=3, data=_pixels()[:3])
    alpha = np.concatenate([_pixels(), np.full((1, 64, 64), 255, np.uint8)])
    alpha[4, :16] = 0
    ci = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.undefined, ColorInterp.alpha]
    t["alpha"] = _tile(d / "alpha.tif", count=5, data=alpha, colorinterp=ci)
    t["uint16"] = _tile(d / "uint16.tif", dtype="uint16", data=_pixels().astype(np.uint16) * 200)
    nan = _pixels().astype(np.float32)
    nan[:, :16, :16] = np.nan
    t["float_nan"] = _tile(d / "float_nan.tif", dtype="float32", nodata=float("nan"), data=nan)
    holes = _pixels()
    holes[:, 20:40, 20:40] = 0
    t["nodata_areas"] = _tile(d / "nodata_areas.tif", nodata=0, data=holes)
    t["small"] = _tile(d / "small.tif", 20)
    t["huge_header"] = _huge(d / "huge_header.tif")
    return t


def _pixels(size: int = 64) -> np.ndarray:
    with rasterio.open(NAIP) as ds:
        return ds.read(window=Window(0, 0, size, size))


def _huge(path: Path, side: int = 1_000_000) -> Path:
    """A sparse GeoTIFF whose header declares ``side`` x ``side`` pixels (the file is ~1 MB)."""
    with rasterio.open(NAIP) as ds:
        crs, transform = ds.crs, ds.transform
    profile = {"driver": "GTiff", "width": side, "height": side, "count": 4, "dtype": "uint8"}
    profile |= {"crs": crs, "transform": transform, "tiled": True, "blockxsize": 4096, "blockysize": 4096}
    with rasterio.open(path, "w", **profile, sparse_ok=True, BIGTIFF="YES"):
        pass
    return path


def _infer(model: Path, inputs: list[Path | str], out: Path, *extra: str) -> list[str]:
    argv = ["infer", "--model", str(model), "--output", str(out), *FLAGS, *extra]
    for i in inputs:
        argv += ["--input", str(i)]
    return argv


def _raster_cases(root: Path, m: dict[str, Path], t: dict[str, Path]) -> list[Case]:
    """One ``infer`` per odd raster (the road model), so each case has its own line and output."""
    out = root / "out"
    rows = [
        ("zero", "a zero-byte .tif", 1, "is empty (0 bytes)"),
        ("truncated", "a GeoTIFF cut in half (interrupted download)", 1, "is truncated"),
        ("renamed_png", "a PNG renamed to .tif", 1, "has no coordinate reference system"),
        ("no_crs", "a GeoTIFF without CRS", 1, "assign one (e.g. `rio edit-info --crs EPSG:<code> "),
        ("rotated", "a rotated geotransform", 0, None),
        ("three_bands", "3 bands for a 4-band model", 1, "model expects 4 bands"),
        ("alpha", "RGBN + alpha band", 0, None),
        ("uint16", "uint16 for a uint8 model", 1, "data type uint16 is not supported"),
        ("float_nan", "float32 with NaN for a uint8 model", 1, "data type float32 is not supported"),
        ("nodata_areas", "nodata areas (nodata = 0)", 0, None),
        ("small", "20 x 20 px, smaller than the 32 px training patch", 0, None),
        ("huge_header", "header declaring 1,000,000 x 1,000,000 px", 1, "of disk (uncompressed temporary"),
    ]
    cases = []
    for key, what, code, problem in rows:
        o = out / key
        extra = ("--window", "4096") if key == "huge_header" else ()
        done = [str(o / f"{key}.tif")] if code == 0 else []
        cases.append(
            Case(key, what, _infer(m["road"], [t[key]], o, *extra), code, problem, str(o), None, done)
        )
    return cases


def _other_cases(root: Path, m: dict[str, Path], t: dict[str, Path]) -> list[Case]:
    """Lists, name collisions, output folders, per-tile failures and the full disk (road model)."""
    out = root / "out"
    listing = root / "tiles" / "missing.txt"
    listing.write_text("# one entry is gone\ngood.tif\ngone.tif\n")
    (root / "empty.txt").write_text("# nothing here yet\n\n")
    for sub in ("a", "b"):
        (root / sub).mkdir()
        _tile(root / sub / "same.tif")
    (out / "read_only_output").mkdir(parents=True)
    mixed = root / "mixed"
    mixed.mkdir()
    _tile(mixed / "fine.tif")
    (mixed / "broken.tif").write_bytes(b"")
    road, good = m["road"], t["good"]

    def case(name: str, what: str, inputs: list[Path | str], problem: str, *extra: str, **kw: Any) -> Case:
        o = out / name
        return Case(name, what, _infer(road, inputs, o, *extra), 1, problem, str(o), **kw)

    return [
        case(
            "missing_entry",
            "a list file naming a missing raster (refused whole before any work, even with --keep-going)",
            [listing],
            "missing.txt: list file names rasters that do not exist: line 3:",
            "--keep-going",
        ),
        case(
            "folder_url",
            "an object-storage folder URL as --input (remote folders are not listed)",
            ["s3://imagery/naip/"],
            "s3://imagery/naip/: is a folder URL; satcnn does not list remote folders",
        ),
        case(
            "empty_list",
            "a list file naming no raster",
            [root / "empty.txt"],
            "empty.txt: list file names no raster",
        ),
        case(
            "colliding_names",
            "a/same.tif and b/same.tif into one folder",
            [root / "a" / "same.tif", root / "b" / "same.tif"],
            "same.tif",
        ),
        case("read_only_output", "a read-only output folder", [good], "cannot write to the output folder"),
        Case(
            "export_read_only",
            "`satcnn export` into the read-only output folder",
            [
                "export",
                "--model",
                str(road),
                "--format",
                "torchscript",
                "--out",
                str(out / "read_only_output"),
            ],
            1,
            "read_only_output: cannot write to the output folder",
            str(out / "read_only_output"),
        ),
        case(
            "disk_full_before",
            "1 KB free on the output disk (simulated)",
            [good],
            "of disk (uncompressed temporary",
            patch="free_1k",
        ),
        case(
            "disk_fills_during",
            "the disk fills while the COG is written (simulated ENOSPC)",
            [good],
            "cannot write: the disk is full",
            patch="enospc",
        ),
        case(
            "keep_going_one_bad",
            "--keep-going over a folder with one bad tile",
            [mixed],
            "broken.tif: is empty",
            "--keep-going",
            outputs=[str(out / "keep_going_one_bad" / "fine.tif")],
        ),
    ]


def _mask_case(root: Path) -> Case:
    """A class-coded raster (values 0, 3, 7) given as the road mask of a fit."""
    scenes = root / "scenes"
    (scenes / "images").mkdir(parents=True)
    (scenes / "masks").mkdir()
    _tile(scenes / "images" / "s1.tif")
    classes = np.zeros((1, 64, 64), np.uint8)
    classes[0, :20], classes[0, 40:] = 3, 7
    _tile(scenes / "masks" / "s1.tif", count=1, data=classes)
    argv = ["fit", "--config", str(CONFIGS / "roads" / "resunet.yaml"), "--config"]
    argv += [str(CONFIGS / "trainer" / "debug.yaml"), "--data.init_args.root", str(scenes)]
    argv += ["--data.init_args.patch_size", "32", "--data.init_args.val_overlap", "8"]
    argv += ["--model.init_args.model_kwargs.filters", "[4, 8, 16]"]
    return Case(
        "mask_values", "a road mask holding 0, 3 and 7 (class codes)", argv, 1, "mask (e.g. `rio calc "
    )


def _model_cases(root: Path, m: dict[str, Path], t: dict[str, Path]) -> list[Case]:
    """A bad model of each kind given to ``infer --model`` and ``fit --ckpt_path``."""
    out = root / "out"
    rows = [
        ("notes", "a text file as --model", "is a text file, not a PyTorch checkpoint"),
        ("empty", "a zero-byte .ckpt", "is empty (0 bytes)"),
        ("cut", "a .ckpt cut in half", "is truncated or damaged"),
        ("plain", "a plain torch state_dict", "not a satcnn checkpoint"),
        ("pickled", "a .ckpt holding a pickled object", "refused to load"),
        ("newer", "a .ckpt of a newer checkpoint format", "checkpoint format 99"),
        ("nockpt", "a folder without a .ckpt", "does not hold exactly one checkpoint"),
    ]
    cases = [
        Case(
            f"model_{k}",
            what,
            _infer(m[k], [t["good"]], out / f"model_{k}"),
            1,
            problem,
            str(out / f"model_{k}"),
        )
        for k, what, problem in rows
    ]
    cases.append(
        Case(
            "small_classifier",
            "20 x 20 px for a classifier of 28 px patches",
            _infer(m["classifier"], [t["small"]], out / "small_classifier"),
            1,
            "smaller than one 28 x 28 window",
            str(out / "small_classifier"),
        )
    )
    cases.append(
        Case(
            "model_missing",
            "a --model path that does not exist",
            _infer(root / "models" / "gone.ckpt", [t["good"]], out / "model_missing"),
            1,
            "model checkpoint not found",
            str(out / "model_missing"),
        )
    )
    sat6 = ["fit", "--config", str(CONFIGS / "deepsat" / "sat6.yaml"), "--config"]
    sat6 += [str(CONFIGS / "trainer" / "debug.yaml"), "--data.init_args.root", str(SAT6_CSV)]
    cases.append(
        Case(
            "fit_ckpt_text",
            "a text file as fit --ckpt_path",
            [*sat6, "--ckpt_path", str(m["notes"])],
            1,
            "is a text file, not a PyTorch checkpoint",
        )
    )
    return cases


def _pipeline_cases(root: Path) -> list[Case]:
    """Pipeline files and ``--set`` values refused before any stage runs; a missing weights file."""
    fit = {"config": str(CONFIGS / "roads" / "resunet.yaml")}
    good, typo = root / "pipeline.yaml", root / "pipeline_typo.yaml"
    for path, extra in ((good, {"epochs": 1}), (typo, {"epocs": 4})):
        spec = {"name": "p", "task": "roads", "out": str(root / "out" / path.stem)}
        path.write_text(json.dumps({**spec, "stages": {"fit": {**fit, **extra}}}))  # JSON is YAML
    run = ["pipeline", "run", str(good), "--set"]
    rows = [
        (
            "key_typo",
            "`epocs: 4` in a pipeline's fit stage",
            ["pipeline", "run", str(typo)],
            "did you mean epochs?",
        ),
        ("set_typo", "`--set fit.epochz=1`", [*run, "fit.epochz=1"], "epochz; known: config"),
        (
            "set_type",
            "`--set fit.epochs=abc`",
            [*run, "fit.epochs=abc"],
            "'fit': epochs must be a whole number",
        ),
        (
            "set_threshold",
            "`--set infer.threshold=abc`",
            [*run, "infer.threshold=abc"],
            "threshold must be a",
        ),
        (
            "set_range",
            "`--set infer.threshold=1.5`",
            [*run, "infer.threshold=1.5"],
            "must be in [0, 1], got 1.5",
        ),
        (
            "args_typo",
            "`--set fit.args.data.init_args.bach_size=4` (checked by `satcnn fit`'s parser)",
            [*run, "fit.args.data.init_args.bach_size=4"],
            "'bach_size' is not accepted; did you mean 'batch_size'?",
        ),
    ]
    cases = [Case(f"pipeline_{name}", what, argv, 1, problem) for name, what, argv, problem in rows]
    transfer = ["fit", "--config", str(CONFIGS / "deepsat" / "sat6_resnet18_transfer.yaml"), "--config"]
    transfer += [str(CONFIGS / "trainer" / "debug.yaml"), "--data.init_args.root", str(SAT6_CSV)]
    transfer += ["--model.init_args.model_kwargs.pretrained", str(root / "gone" / "resnet18.safetensors")]
    what = "a `pretrained` weights file that does not exist (README's transfer learning)"
    cases.append(Case("fit_pretrained_missing", what, transfer, 1, "pretrained weights file not found"))
    return cases


def build_cases(root: Path) -> list[Case]:
    """Write every case's files under ``root``; the cases in table order."""
    models, rasters = _models(root), _rasters(root)
    return [
        *_raster_cases(root, models, rasters),
        *_other_cases(root, models, rasters),
        *_model_cases(root, models, rasters),
        _mask_case(root),
        *output_cases(root, models, rasters, Case),
        *_pipeline_cases(root),
    ]


@contextlib.contextmanager
def _simulated(patch: str | None) -> Iterator[None]:
    """A full disk, in this process only: little free space, or ENOSPC when the COG is written."""
    import satcnn.io.cog as cog

    saved = cog.shutil.disk_usage, cog.cog_translate
    if patch == "free_1k":
        cog.shutil.disk_usage = lambda path: SimpleNamespace(total=10**12, used=10**12 - 1024, free=1024)
    elif patch == "enospc":

        def full(*args: Any, **kwargs: Any) -> None:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        cog.cog_translate = full
    try:
        yield
    finally:
        cog.shutil.disk_usage, cog.cog_translate = saved


def run_case(argv: list[str], patch: str | None) -> tuple[int, str]:
    """``satcnn.cli.main(argv)`` as ``python -m satcnn`` would run it; (exit status, all of stderr)."""
    from satcnn.cli import main

    with open(os.devnull, "wb") as sink, contextlib.ExitStack() as stack:
        import tempfile

        buf = stack.enter_context(tempfile.TemporaryFile())
        sys.stdout.flush()
        sys.stderr.flush()
        saved_err, saved_out = os.dup(2), os.dup(1)
        os.dup2(buf.fileno(), 2)
        os.dup2(sink.fileno(), 1)
        try:
            with _simulated(patch):
                code = main(argv)
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
        except Exception:
            traceback.print_exc()  # what the interpreter would print for an escaping exception
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved_err, 2)
            os.dup2(saved_out, 1)
            os.close(saved_err)
            os.close(saved_out)
        buf.seek(0)
        return code, buf.read().decode(errors="replace")


def dump_cases(cases: list[Case], path: Path) -> None:
    """Write ``cases`` as JSON for the subprocess."""
    path.write_text(json.dumps([asdict(c) for c in cases]))


if __name__ == "__main__":
    cases = [Case(**c) for c in json.loads(Path(sys.argv[1]).read_text())]
    results = {c.name: run_case(c.argv, c.patch) for c in cases}
    Path(sys.argv[2]).write_text(json.dumps(results, indent=1))
