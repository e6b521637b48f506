"""`bench/compare_models.py --quick`: the model table's columns and values (docs/models.md's generator)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.factories import ROOT


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("compare_models", ROOT / "bench" / "compare_models.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_quick_table_has_every_column_and_true_values(tmp_path: Path) -> None:
    script = _load_script()
    out = tmp_path / "models.md"
    script.main(["--quick", "--out", str(out)])
    lines = [ln for ln in out.read_text().splitlines() if ln.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == script.COLUMNS
    rows = {r[1]: r for r in ([c.strip() for c in ln.strip("|").split("|")] for ln in lines[2:])}
    assert set(rows) == {"`deepsat_cnn`", "`lenet`"}
    cnn = dict(zip(header, rows["`deepsat_cnn`"], strict=True))
    # configs/deepsat/sat6.yaml's CNN, counted by hand: conv 4->32 (3x3, no bias) + BN, conv 32->64
    # + BN, dense 64*5*5 -> 128, dense 128 -> 6
    assert cnn["parameters"] == f"{4 * 32 * 9 + 64 + 32 * 64 * 9 + 128 + 1600 * 128 + 128 + 128 * 6 + 6:,}"
    # FLOPs (2 per multiply-add): 26x26x32 outputs of 4x9, 11x11x64 of 32x9, then the dense layers
    flops = 2 * (26 * 26 * 32 * 4 * 9 + 11 * 11 * 64 * 32 * 9 + 1600 * 128 + 128 * 6)
    assert cnn["MFLOPs / patch"] == f"{flops / 1e6:,.2f}" == "6.43"
    assert cnn["input side"] == "28"
    for row in rows.values():
        cells = dict(zip(header, row, strict=True))
        assert float(cells["CPU patches/s"].replace(",", "")) > 0
        assert float(cells["training s"]) > 0
        assert 0 <= float(cells["test accuracy"]) <= 1
    lenet = dict(zip(header, rows["`lenet`"], strict=True))
    assert lenet["parameters"] != cnn["parameters"] and lenet["MFLOPs / patch"] != cnn["MFLOPs / patch"]
