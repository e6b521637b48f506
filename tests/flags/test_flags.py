"""Flags derived from options dataclasses: every field a flag, the same keys in pipeline files."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import pytest

from satcnn.errors import ConfigError
from satcnn.flags import flag_of, satcnn_command, stage_keys
from satcnn.inference.cli import build_parser
from satcnn.inference.options import InferenceOptions
from satcnn.pipeline.spec import INFER_OPTIONS, load_spec

REQUIRED = ["--model", "m.ckpt", "--input", "a.tif", "--output", "out"]


def test_every_inference_option_is_a_flag_with_the_fields_default() -> None:
    parser = build_parser()
    text = parser.format_help()
    args = parser.parse_args(REQUIRED)
    fields = dataclasses.fields(InferenceOptions)
    for f in fields:
        assert f" {flag_of(InferenceOptions, f.name)}" in text, f.name
        assert hasattr(args, f.name), f.name
    parsed = InferenceOptions(**{f.name: getattr(args, f.name) for f in fields})
    direct = InferenceOptions("m.ckpt", ["a.tif"], "out")
    assert parsed == direct  # the flags' defaults are the fields' defaults
    assert (
        flag_of(InferenceOptions, "inputs") == "--input"
        and flag_of(InferenceOptions, "track") == "--no-track"
    )


def test_flags_set_the_fields() -> None:
    argv = [*REQUIRED, "--input", "b.tif", "--block", "512", "--batch-size", "3", "--no-progress", "--vector"]
    args = build_parser().parse_args([*argv, "--tta", "d4", "--tracking-uri", "sqlite:///x.db"])
    options = InferenceOptions(
        **{f.name: getattr(args, f.name) for f in dataclasses.fields(InferenceOptions)}
    )
    assert options.input_specs == ["a.tif", "b.tif"] and options.block == 512 and options.batch_size == 3
    assert not options.progress and options.vector and options.tta == "d4"
    assert options.tracking_uri == "sqlite:///x.db"


def _spec(tmp_path: Path, settings: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(f"name: p\ntask: roads\nstages:\n  infer: {settings}\n")
    return path


VALID = {"inputs": "x.tif", "bands": "1,2,3", "rescale": "percentile"}  # a valid value of a stage key


def test_pipeline_infer_keys_are_infer_flags(tmp_path: Path) -> None:
    keys = stage_keys(InferenceOptions)
    assert keys == ("inputs", *INFER_OPTIONS) and "block" in keys
    parser_help = build_parser().format_help()
    for f in dataclasses.fields(InferenceOptions):
        flag = flag_of(InferenceOptions, f.name)
        assert f" {flag}" in parser_help
        value = VALID.get(f.name, f.default if f.default not in (None, dataclasses.MISSING) else 1)
        settings = f"{{{f.name}: {json.dumps(value)}}}"
        if f.name in keys:  # accepted by the pipeline, under the field's name (with a valid value)
            assert load_spec(_spec(tmp_path, settings)).stages["infer"] == {f.name: value}
        else:  # what the pipeline sets itself (model, output, tracking) or a run-only switch
            with pytest.raises(ConfigError, match=f"unknown setting\\(s\\) {f.name};"):
                load_spec(_spec(tmp_path, settings))


def test_a_misspelt_pipeline_key_names_the_nearest_field(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"unknown setting\(s\) blok; known: inputs, window.*did you mean block\?"
    ):
        load_spec(_spec(tmp_path, "{blok: 512}"))


def test_satcnn_command_names_what_runs_from_this_shell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir, other = tmp_path / "venv" / "bin", tmp_path / "elsewhere"
    for folder, names in ((bin_dir, ("python", "satcnn")), (other, ("python", "satcnn"))):
        folder.mkdir(parents=True)
        for name in names:
            (folder / name).write_text("#!/bin/sh\n")
            (folder / name).chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(bin_dir / "python"))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{other}")  # an activated environment
    assert satcnn_command("view", tmp_path / "my out") == f"satcnn view '{tmp_path / 'my out'}'"
    (bin_dir / "satcnn").unlink()  # PATH's satcnn is another environment's: not this one
    monkeypatch.setenv("PATH", f"{other}{os.pathsep}{bin_dir}")
    assert satcnn_command("ui") == f"{bin_dir / 'python'} -m satcnn ui"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{other}")  # this python first, no satcnn script
    assert satcnn_command("ui") == "python -m satcnn ui"
