"""Shared by the bench scripts: write one bench's figures as ``bench/results/<name>.json``.

Every file holds ``{"bench", "host", "cpus", "torch", "measured", "args", "rows"}`` (``measured``:
UTC time the file was written); a row is
``{"what", "value", "unit", "reference", "ratio"}`` (reference and ratio may be null).
``bench/report.py`` turns all files into the one table of ``docs/performance.md``.
"""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

RESULTS = Path(__file__).parent / "results"


def row(
    what: str, value: float, unit: str, reference: str | None = None, ratio: float | None = None
) -> dict[str, Any]:
    """One figure: ``value`` in ``unit``, with an optional ``ratio`` to a named ``reference``."""
    return {"what": what, "value": value, "unit": unit, "reference": reference, "ratio": ratio}


def write_json(
    name: str,
    rows: list[dict[str, Any]],
    args: dict[str, Any],
    out_dir: Path = RESULTS,
    section: str | None = None,
) -> Path:
    """Write ``<out_dir>/<name>.json`` and return its path.

    ``section``: Markdown that ``bench/report.py`` prints under the bench's own heading.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    doc = {
        "bench": name,
        "host": f"{platform.node()} ({platform.machine()})",
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "measured": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in args.items()},
        "rows": rows,
        **({"section": section} if section else {}),
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {path}")
    return path
