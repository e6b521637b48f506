"""The validate stage: check every input before any compute, and say what the fit trains on.

* roads: ``scenes`` (``images/<name>.tif`` + ``masks/<name>.tif`` on the same grid, as ``satcnn
  data synth-roads`` writes; or a list of such folders, e.g. a dataset's train, valid and test
  splits, linked into ``<out>/validate/scenes``), ``held_out`` scene names (test and evaluation),
  ``val_scenes`` (validation, the checkpoint's choice; default: the held-out ones), each a list
  of names or a scenes folder (the names of its images), and ``extra_inputs``
  (rasters inferred without truth, e.g. a real tile); ``allow_no_crs: true`` accepts scenes
  without a CRS (a Massachusetts Roads pair converted by ``satcnn data png-to-geotiff``);
* landcover: ``patches`` (Kaggle CSV folders and per-class GeoTIFF folders, merged into one patch
  folder with ``aliases`` mapping folder names to class names) and ``extra_inputs`` (tiles to map).

Outputs: ``data_args`` (the fit's data options), ``infer_inputs``, and for roads ``truths``
(image path to mask path of each held-out scene).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from satcnn.errors import ConfigError, InputFileNotFoundError, RasterError
from satcnn.io.raster import open_raster
from satcnn.io.remote import as_path, is_href
from satcnn.pipeline.context import Outputs, StageContext
from satcnn.tracking.params import param_value

__all__ = ["validate_inputs", "validate_run"]


def _paths(ctx: StageContext, key: str) -> list[Path]:
    value = ctx.get(key, [])
    items = [value] if isinstance(value, str) else list(value)
    return [as_path(str(p)) if is_href(p) else Path(str(p)).expanduser().resolve() for p in items]


def validate_inputs(ctx: StageContext) -> list[Path]:
    """The files the stage key covers: the scenes or patch sources, and the extra inputs."""
    main = _paths(ctx, "scenes" if ctx.spec.task == "roads" else "patches")
    return [*main, *_paths(ctx, "extra_inputs")]


def _check_extra(ctx: StageContext, bands: int) -> list[str]:
    extras = _paths(ctx, "extra_inputs")
    for path in extras:
        open_raster(path, bands=bands, require_crs=not ctx.get("allow_no_crs", False))
    return [str(p) for p in extras]


def _scene_images(root: Path) -> list[Path]:
    images = sorted((root / "images").glob("*.tif"))
    if not images:
        raise InputFileNotFoundError("no images/*.tif (make scenes with `satcnn data synth-roads`)", root)
    return images


def _link_scenes(roots: list[Path], dest: Path) -> Path:
    """One scenes folder ``dest`` of symbolic links to the scenes of ``roots`` (a dataset's splits)."""
    found: dict[str, Path] = {}
    for root in roots:
        for image in _scene_images(root):
            if image.stem in found:
                raise ConfigError(
                    f"validate.scenes: scene {image.stem} is in both {found[image.stem]} and {root}"
                )
            mask = root / "masks" / image.name
            if not mask.is_file():
                raise InputFileNotFoundError(f"no mask for {image.name} (expected {mask})", mask)
            found[image.stem] = root
    for sub in ("images", "masks"):  # rebuilt from the roots at every run
        shutil.rmtree(dest / sub, ignore_errors=True)
        (dest / sub).mkdir(parents=True)
        for name, root in found.items():
            (dest / sub / f"{name}.tif").symlink_to(root / sub / f"{name}.tif")
    return dest


def _scene_names(ctx: StageContext, key: str, default: list[str]) -> list[str]:
    """The scene names of ``key``: a list of names, or a scenes folder (the names of its images)."""
    value = ctx.get(key)
    if value is None:
        return default
    if isinstance(value, str):
        return [image.stem for image in _scene_images(Path(value).expanduser().resolve())]
    return [str(n) for n in value]


def _validate_roads(ctx: StageContext, bands: int) -> Outputs:
    scenes = ctx.get("scenes")
    if not scenes:
        raise ConfigError(f"{ctx.spec.path}: validate.scenes must name a folder with images/ and masks/")
    roots = _paths(ctx, "scenes")
    root = roots[0] if len(roots) == 1 else _link_scenes(roots, ctx.out / "scenes")
    images = _scene_images(root)
    truths: dict[str, str] = {}
    require_crs = not ctx.get("allow_no_crs", False)
    for image in images:
        info = open_raster(image, bands=bands, require_crs=require_crs)
        mask = root / "masks" / image.name
        if not mask.is_file():
            raise InputFileNotFoundError(f"no mask for {image.name} (expected {mask})", mask)
        minfo = open_raster(mask, bands=1, require_crs=require_crs)
        if (minfo.crs, minfo.transform, minfo.shape) != (info.crs, info.transform, info.shape):
            raise RasterError(
                f"mask is not on its image's grid ({image}): CRS, transform or size differ", mask
            )
        truths[image.stem] = str(mask)
    held_out = _scene_names(ctx, "held_out", [images[-1].stem])
    val = _scene_names(ctx, "val_scenes", held_out)
    for option, names in (("held_out", held_out), ("val_scenes", val)):
        missing = [n for n in names if n not in truths]
        if missing:
            raise ConfigError(f"validate.{option}: no scene(s) {', '.join(missing)} in {root / 'images'}")
    if len(set(held_out) | set(val)) == len(images):
        raise ConfigError(
            f"validate: every scene of {root} is held out or validates; none is left to train on"
        )
    held = [str(root / "images" / f"{n}.tif") for n in held_out]
    data_args: dict[str, Any] = {
        "data.init_args.root": str(root),
        "data.init_args.val_scenes": val,
        "data.init_args.test_scenes": held_out,
    }
    return {
        "data_args": data_args,
        "held_out": held_out,
        "truths": {image: truths[Path(image).stem] for image in held},
        "infer_inputs": [*held, *_check_extra(ctx, bands)],
    }


def _validate_landcover(ctx: StageContext, bands: int) -> Outputs:
    from satcnn.data.deepsat_merge import merge_patch_sets

    sources = _paths(ctx, "patches")
    if not sources:
        raise ConfigError(f"{ctx.spec.path}: validate.patches must list CSV or patch folders")
    extras = _check_extra(ctx, bands)
    merged = merge_patch_sets(sources, ctx.out / "patches", aliases=dict(ctx.get("aliases", {})))
    return {
        "data_args": {
            "data.init_args.root": str(merged.root),
            "data.init_args.format": "folder",
            "data.init_args.classes": merged.classes,
        },
        "classes": merged.classes,
        "patch_counts": merged.counts,
        "test_patches": str(merged.root / "tst"),
        "infer_inputs": extras,
        "files": [str(merged.root)],
    }


def validate_run(ctx: StageContext, run_id: str | None) -> Outputs:
    """Check the inputs (roads) or merge and check the patches (landcover); see the module docstring."""
    bands = int(ctx.get("bands", 4))
    outputs = _validate_roads(ctx, bands) if ctx.spec.task == "roads" else _validate_landcover(ctx, bands)
    if run_id is not None:
        inputs = ", ".join(str(p) for p in validate_inputs(ctx))
        ctx.tracker.client.log_param(run_id, "inputs", param_value(inputs))
    return outputs
