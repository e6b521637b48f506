"""``view_command``: the map hint after ``infer`` checks small folders and names large ones unchecked."""

from __future__ import annotations

import json
from pathlib import Path

from satcnn.view.catalog import CHECKED_OUTPUTS, view_command


def _manifest(folder: Path, n: int) -> Path:
    folder.mkdir()
    outputs = [
        {"input": f"in{i}.tif", "outputs": [str(folder / f"o{i}.tif")], "status": "done"} for i in range(n)
    ]
    (folder / "manifest.json").write_text(json.dumps({"outputs": outputs}))
    return folder


def test_a_small_folder_is_checked_and_a_large_one_named_without_opening_its_outputs(tmp_path: Path) -> None:
    assert view_command(_manifest(tmp_path / "small", 3)) is None  # its outputs are missing: view refuses it
    large = _manifest(tmp_path / "large", CHECKED_OUTPUTS + 1)  # opening 501 outputs would be the cost
    command = view_command(large)
    assert command is not None and command.endswith(f"view {large}")
