"""A pipeline stopped by SIGTERM says how to resume itself: the same `pipeline run` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from satcnn.flags import satcnn_command
from satcnn.pipeline.runner import KILL_ENV
from tests.factories import ROOT


@pytest.mark.slow  # one `python -m satcnn pipeline run` up to its first stage run (MLflow): ~6 s
def test_sigterm_names_the_resume_command(tmp_path: Path) -> None:
    spec = {
        "name": "p",
        "task": "roads",
        "out": str(tmp_path / "out"),
        "stages": {"validate": {"scenes": "x"}},
    }
    file = tmp_path / "p.yaml"
    file.write_text(json.dumps(spec))
    argv = ["pipeline", "run", str(file), "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), KILL_ENV: "validate:TERM"}
    out = subprocess.run(
        [sys.executable, "-m", "satcnn", *argv],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 143, out.stderr[-3000:]
    command = satcnn_command(*argv)  # as it runs from this shell (`python -m satcnn` with this PATH)
    lines = [ln for ln in out.stderr.splitlines() if ln.startswith("satcnn")]
    assert lines == [
        f"satcnn: pipeline p interrupted by SIGTERM; finished stages are kept: resume with `{command}`"
    ], out.stderr[-3000:]
    assert "Traceback" not in out.stderr
