"""The test suite's own layout: no test module imports another; shared builders live in tests.factories."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _is_test_module(module: str) -> bool:
    return module.split(".")[0] == "tests" and module.split(".")[-1].startswith("test_")


def imports_of_test_modules(root: Path) -> list[str]:
    """``file:line: module`` for each import of a test module (``tests.....test_*``) under ``root``."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.ImportFrom):  # relative imports hide what they import
                modules = [f"tests.relative.{node.module or 'test_'}"]
            else:
                continue
            found += [f"{path.relative_to(root)}:{node.lineno}: {m}" for m in modules if _is_test_module(m)]
    return found


def test_no_test_module_imports_another(tmp_path: Path) -> None:
    assert imports_of_test_modules(TESTS) == []
    # the check finds each way of importing a test module
    lines = [
        "from tests.io.test_io import write_tif",
        "import tests.cli.test_cli",
        "from tests.io import test_reader",
        "from tests.factories import write_tif",
        "from tests.conftest import ROOT",
    ]
    (tmp_path / "test_a.py").write_text("\n".join(lines))
    assert imports_of_test_modules(tmp_path) == [
        "test_a.py:1: tests.io.test_io",
        "test_a.py:2: tests.cli.test_cli",
        "test_a.py:3: tests.io.test_reader",
    ]
