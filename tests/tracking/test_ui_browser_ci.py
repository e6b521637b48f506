"""The browser test cannot pass silently: without Chromium it skips on a workstation, fails under CI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import ROOT

TEST = "tests/tracking/test_ui_browser.py::test_ui_shows_the_run"


@pytest.mark.slow
@pytest.mark.parametrize(("ci", "outcome"), [("true", "1 failed"), (None, "1 skipped")])
def test_browser_test_without_chromium(tmp_path: Path, ci: str | None, outcome: str) -> None:
    chromium, driver = tmp_path / "no-chromium", tmp_path / "no-chromedriver"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.update(SATCNN_CHROMIUM=str(chromium), SATCNN_CHROMEDRIVER=str(driver))
    env.pop("CI", None)
    if ci is not None:
        env["CI"] = ci
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "browser", "-rfs", TEST],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = proc.stdout + proc.stderr
    assert outcome in out, out[-3000:]
    assert f"{chromium} and {driver} missing" in out, out[-3000:]  # names what is missing
    if ci:
        assert proc.returncode == 1 and "skipped" not in out and "CI is set" in out, out[-3000:]
    else:
        assert proc.returncode == 0, out[-3000:]
