"""Module boundaries: no module imports another module's private names.

The layer order itself is an import-linter contract (pyproject.toml, run by ``make lint``); this
checks what import-linter cannot: ``from satcnn.<module> import _name`` anywhere in ``satcnn/``
(ruff's PLC2701 exempts imports within one top-level package, so it cannot).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "satcnn"


def private_imports(root: Path) -> list[str]:
    """``file:line: name`` for each private name a module imports from another module."""
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent).with_suffix("")
        here = ".".join(p for p in rel.parts if p != "__init__")
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.ImportFrom) or not node.module or node.level:
                continue
            if not node.module.startswith("satcnn") or node.module == here:
                continue
            parts = node.module.split(".")
            names = [a.name for a in node.names]
            bad = [n for n in names if n.startswith("_") and not n.startswith("__")]
            bad += [p for p in parts if p.startswith("_") and not p.startswith("__")]
            found += [f"{path.relative_to(root.parent)}:{node.lineno}: {n}" for n in bad]
    return found


def test_no_module_imports_another_modules_private_names() -> None:
    assert private_imports(ROOT) == []


def test_the_check_finds_a_private_import(tmp_path: Path) -> None:
    pkg = tmp_path / "satcnn"
    (pkg / "inference").mkdir(parents=True)
    (pkg / "tracking").mkdir()
    (pkg / "inference" / "runner.py").write_text(
        "from satcnn.tracking.mlflow import _RetryingClient, ok\nfrom satcnn.inference.x import _fine\n"
    )
    (pkg / "tracking" / "mlflow.py").write_text("")
    assert private_imports(pkg) == [
        "satcnn/inference/runner.py:1: _RetryingClient",
        "satcnn/inference/runner.py:2: _fine",  # within one package too
    ]
