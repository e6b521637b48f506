"""Corpus cases of issue 24 (items 5 and 8): what ``infer`` writes fed to ``evaluate`` and
``vectorize``, exports given to ``infer``, and hints that name what the file has.

``output_cases(root, models, tiles)`` writes the files under ``root`` and returns the cases;
``tests/cli/reliability_corpus.py`` adds them to the corpus (and docs/reliability.md).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from satcnn.io.output_tags import OutputTags
from tests.factories import write_tif

FLAGS = ["--no-track"]


def _outputs(root: Path) -> tuple[Path, Path, Path]:
    """A folder as ``infer --output-type both`` leaves it (3 probabilities, 3 masks), the truths,
    and a class map, all 32 x 32 on one UTM grid with satcnn's tags."""
    preds, truths = root / "both_out", root / "both_truth"
    rng = np.random.default_rng(0)
    for stem in ("a", "b", "c"):
        prob = rng.integers(0, 255, (32, 32), dtype=np.uint8)
        road = (prob >= 127).astype(np.uint8)
        for path, data, tags in (
            (preds / f"{stem}.tif", prob, OutputTags("prob_uint8", source=f"{stem}.tif")),
            (preds / f"{stem}_mask.tif", road, OutputTags("mask", threshold=0.5, source=f"{stem}.tif")),
        ):
            write_tif(path, data, count=1, nodata=255 if tags.output == "mask" else 0)
            _tag(path, tags)
        write_tif(truths / f"{stem}.tif", (rng.random((32, 32)) > 0.7).astype(np.uint8), count=1)
    classes = write_tif(root / "class_map.tif", rng.integers(0, 3, (32, 32), dtype=np.uint8), count=1)
    _tag(classes, OutputTags("class_map", classes=("a", "b", "c"), patch_size=4, stride=4, align="center"))
    return preds, truths, classes


def _tag(path: Path, tags: OutputTags) -> None:
    import rasterio

    with rasterio.open(path, "r+") as ds:
        tags.write(ds)


def _exports(root: Path) -> tuple[Path, Path]:
    """A ``torch.export`` program (.pt2) and a TorchScript file of a tiny convolution."""
    conv = torch.nn.Conv2d(4, 1, 1).eval()
    x = torch.zeros(1, 4, 8, 8)
    pt2, script = root / "models" / "roads.pt2", root / "models" / "roads.torchscript.pt"
    torch.export.save(torch.export.export(conv, (x,)), pt2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated, still exported
        torch.jit.save(torch.jit.trace(conv, x), script)
    return pt2, script


def output_cases(root: Path, models: dict[str, Path], tiles: dict[str, Path], case: Any) -> list[Any]:
    """The cases, built with ``case`` (the corpus's ``Case`` class)."""
    preds, truths, classes = _outputs(root)
    listing = root / "both_out.txt"
    listing.write_text("both_out/a.tif\nboth_out/b.tif\nboth_out/c.tif\n")
    pt2, script = _exports(root)
    out = root / "out"
    dead = np.full((4, 32, 32), 7, np.uint8)
    dead[:3] = np.random.default_rng(1).integers(0, 200, (3, 32, 32), dtype=np.uint8)
    tiles["dead_band"] = write_tif(root / "tiles" / "dead_band.tif", dead, res=1.0)
    tiles["one_pixel"] = write_tif(root / "tiles" / "one_pixel.tif", count=4, height=1, width=1)

    def evaluate(name: str, what: str, pred: str) -> Any:
        argv = ["evaluate", "roads", "--pred", pred, "--truth", str(truths), "--figures", "0"]
        return case(name, what, [*argv, "--out-dir", str(out / name), *FLAGS], 0, None, str(out / name))

    def infer(name: str, what: str, model: Path, tile: str, problem: str) -> Any:
        argv = ["infer", "--model", str(model), "--input", str(tiles[tile]), "--output", str(out / name)]
        return case(name, what, [*argv, *FLAGS, "--no-progress"], 1, problem, str(out / name))

    return [
        evaluate(
            "evaluate_both_outputs",
            "evaluate roads --pred on a folder of `infer --output-type both` (probabilities and masks)",
            str(preds),
        ),
        evaluate(
            "evaluate_glob", "evaluate roads --pred with a quoted glob, as infer takes", f"{preds}/*.tif"
        ),
        evaluate(
            "evaluate_list_file", "evaluate roads --pred with a list file, as infer takes", str(listing)
        ),
        case(
            "vectorize_classes_on_probabilities",
            "vectorize classes on a road probability COG (tagged prob_uint8)",
            ["vectorize", "classes", str(preds / "a.tif"), "--out", str(out / "vc" / "classes.gpkg")],
            1,
            "is a satcnn prob_uint8 output",
            str(out / "vc"),
        ),
        case(
            "vectorize_roads_on_class_map",
            "vectorize roads on a class map (tagged class_map)",
            ["vectorize", "roads", str(classes), "--out", str(out / "vr" / "roads.gpkg")],
            1,
            "is a satcnn class_map output",
            str(out / "vr"),
        ),
        infer(
            "model_pt2",
            "a torch.export program (.pt2) as --model, without its model card",
            pt2,
            "good",
            "no model card roads.pt2.json beside the export",
        ),
        infer(
            "model_torchscript",
            "a TorchScript file as --model, without its model card",
            script,
            "good",
            "no model card roads.torchscript.pt.json beside the export",
        ),
        infer("one_pixel", "a 1 x 1 px raster", models["road"], "one_pixel", "too small to infer on"),
        infer(
            "dead_fourth_band",
            "band 4 of 4 constant (nothing else to select)",
            models["road"],
            "dead_band",
            "no other data band to select (4 bands)",
        ),
    ]
