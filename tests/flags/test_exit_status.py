"""One exit status per kind of error in every command (docs/cli.md), through ``python -m satcnn``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.factories import satcnn


@pytest.mark.parametrize(
    ("args", "prog", "flag"),
    [
        (["infer", "--model", "m.ckpt", "--input", "a.tif", "--output", "out", "--block", "0"],
         "infer", "--block"),
        (["vectorize", "roads", "a.tif", "--out", "out/r.gpkg", "--block", "0"],
         "vectorize roads", "--block"),
        (["vectorize", "classes", "a.tif", "--out", "out/c.gpkg", "--block", "0"],
         "vectorize classes", "--block"),
        (["evaluate", "graph", "--pred", "a", "--truth", "b", "--out", "out/r.json", "--topo-origins", "0"],
         "evaluate graph", "--topo-origins"),
        (["data", "synth-roads", "--out", "out", "--count", "0"], "data synth-roads", "--count"),
        (["ui", "--workers", "0"], "ui", "--workers"),
    ],
)  # fmt: skip
def test_a_flag_value_out_of_range_is_a_usage_error_in_every_command(
    tmp_path: Path, args: list[str], prog: str, flag: str
) -> None:
    out = satcnn(*args, cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    errors = [line for line in out.stderr.splitlines() if "error" in line]
    assert errors == [f"satcnn {prog}: error: argument {flag}: must be >= 1, got 0"]
    assert list(tmp_path.iterdir()) == []  # checked before anything is written


@pytest.mark.parametrize(
    "args",
    [
        ["infer", "--model", "missing.ckpt", "--input", "missing.tif", "--output", "out", "--no-track"],
        ["vectorize", "roads", "missing.tif", "--out", "r.gpkg"],
        ["evaluate", "graph", "--pred", "missing.gpkg", "--truth", "missing.geojson"],
        ["data", "split-scene", "missing.tif", "mask.tif", "--out", "out"],
    ],
)
def test_a_missing_input_is_one_error_line_and_exit_1_in_every_command(
    tmp_path: Path, args: list[str]
) -> None:
    out = satcnn(*args, cwd=tmp_path)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    errors = [line for line in out.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith("satcnn: error: ") and "missing." in errors[0], (
        out.stderr
    )
