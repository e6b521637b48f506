"""A long raster logs the time it has left, after its first windows (issue 24, item 6)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from satcnn.inference.budget import ESTIMATE_AFTER_ENV, duration
from tests.factories import NAIP, ROOT, crop, write_checkpoint


def test_duration_reads_as_hours_and_minutes() -> None:
    assert [duration(s) for s in (4.2, 59, 720, 4 * 3600 + 600)] == ["4 s", "1 min", "12 min", "4 h 10 min"]


@pytest.mark.slow  # one `python -m satcnn infer` subprocess: ~6 s
def test_infer_logs_an_estimate_after_its_first_windows(tmp_path: Path) -> None:
    model = write_checkpoint(tmp_path / "sat6.ckpt")
    tile = crop(NAIP, tmp_path / "t.tif", 112)  # 4 blocks of 56 px
    argv = ["infer", "--model", str(model), "--input", str(tile), "--output", str(tmp_path / "out")]
    argv += ["--block", "56", "--no-track", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), ESTIMATE_AFTER_ENV: "0"}  # due after the first block
    out = subprocess.run(
        [sys.executable, "-m", "satcnn", *argv], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    estimates = re.findall(r"t\.tif: ~(\d+ s|\d+ min) left at [0-9.]+ MP/s \(1 of 4 blocks in", out.stderr)
    assert len(estimates) == 1, out.stderr[-2000:]
