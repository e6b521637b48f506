"""`python -m satcnn infer` killed hard at a known point, then rerun (issue 12, item 6).

The atomic writer's test hook (``SATCNN_TEST_KILL_BEFORE_RENAME``, :mod:`satcnn.io.atomic`) makes
the process SIGKILL itself right before the third tile's COG is renamed onto its final name: the
tile is fully computed, its temporary complete, and nothing of it is published. No timing is
involved, so the test cannot pass by killing too early or too late.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from rio_cogeo.cogeo import cog_validate

from satcnn.inference import InferenceOptions, run_inference
from satcnn.io.atomic import KILL_HOOK_ENV, KILL_SIGNAL_ENV
from tests.factories import NAIP, ROOT, crop, write_checkpoint

NAMES = [f"t{i}" for i in range(4)]


def _infer(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "satcnn", "infer", *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_kill_before_the_final_rename_leaves_no_output_and_the_rerun_is_identical(tmp_path: Path) -> None:
    model = write_checkpoint(tmp_path / "sat6.ckpt")
    tiles = tmp_path / "tiles"
    tiles.mkdir()
    for i, name in enumerate(NAMES):
        crop(NAIP, tiles / f"{name}.tif", 56 + 8 * i)
    out = tmp_path / "out"
    args = ["--model", str(model), "--input", str(tiles), "--output", str(out), "--no-track", "--no-progress"]

    killed = _infer(args, {KILL_HOOK_ENV: "t2.tif"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    # t0 and t1 were published whole; t2 was computed but never got its name; t3 never started
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["t0.tif", "t1.tif"]
    for name in ("t0.tif", "t1.tif"):
        assert cog_validate(out / name)[0], name
    hidden = sorted(p.name for p in out.iterdir() if p.name.startswith("."))
    assert hidden == [".t2.tif.cog.tmp.tif", ".t2.tif.tmp.tif"]  # the temporaries of the killed tile only

    rerun = _infer(args, {})
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "2 tiles done, 2 skipped, 0 failed" in rerun.stdout
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # the rerun reused and removed them

    reference = run_inference(InferenceOptions(model, tiles, tmp_path / "ref", track=False, progress=False))
    assert len(reference.done) == len(NAMES)
    for name in [*(f"{n}.tif" for n in NAMES), "class_fractions.csv"]:
        assert (out / name).read_bytes() == (tmp_path / "ref" / name).read_bytes(), name


@pytest.mark.slow
def test_sigterm_stops_like_ctrl_c_one_line_no_temporaries(tmp_path: Path) -> None:
    model = write_checkpoint(tmp_path / "sat6.ckpt")
    tiles = tmp_path / "tiles"
    tiles.mkdir()
    for i, name in enumerate(NAMES):
        crop(NAIP, tiles / f"{name}.tif", 56 + 8 * i)
    out = tmp_path / "out"
    args = ["--model", str(model), "--input", str(tiles), "--output", str(out), "--no-track", "--no-progress"]

    stopped = _infer(args, {KILL_HOOK_ENV: "t2.tif", KILL_SIGNAL_ENV: "TERM"})
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr[-2000:]
    lines = [ln for ln in stopped.stderr.splitlines() if ln.startswith("satcnn")]
    assert lines == [
        "satcnn: interrupted by SIGTERM: finished tiles are kept and temporaries removed; "
        "run the same command again to do the rest"
    ], stopped.stderr[-2000:]
    assert "Traceback" not in stopped.stderr
    assert sorted(p.name for p in out.iterdir()) == ["t0.tif", "t1.tif"]  # no hidden temporary left
