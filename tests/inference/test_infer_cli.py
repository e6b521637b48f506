"""What ``python -m satcnn infer`` prints and leaves behind: refusals, hints and warnings."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.factories import satcnn, write_tif


def _infer(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return satcnn("infer", *args, "--no-progress", cwd=cwd, timeout=300)


def test_a_missing_input_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    good = write_tif(tmp_path / "good.tif", count=3, height=32, width=32, res=1.0)
    # tracked (the default): an MLflow run would create mlflow.db in the working folder
    run = _infer("--model", "pretrained:roads-massachusetts", "--input", str(good),
                 "--input", str(tmp_path / "gone.tif"), "--input", str(tmp_path / "lost.tif"),
                 "--output", "out", "--keep-going", cwd=tmp_path)  # fmt: skip
    assert run.returncode == 1, run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("satcnn: error:")]
    assert errors == [
        f"satcnn: error: {tmp_path / 'gone.tif'}: raster not found; 1 other input not found either "
        f"(e.g. {tmp_path / 'lost.tif'}); nothing was run"
    ], run.stderr
    assert "Traceback" not in run.stderr and run.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.tif"]  # no folder, manifest or MLflow store
