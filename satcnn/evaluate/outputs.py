"""The files of an evaluation: ``metrics.json``, ``metrics.csv`` and PNG figures, each written atomically."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from satcnn.evaluate.result import EvaluationResult
from satcnn.io.atomic import atomic_output, write_text_atomic

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["CSV_NAME", "JSON_NAME", "json_safe", "write_outputs"]

JSON_NAME = "metrics.json"
CSV_NAME = "metrics.csv"


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities as ``None`` (JSON has no NaN), recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def _csv_text(rows: list[dict[str, Any]]) -> str:
    fields: list[str] = []
    for row in rows:
        fields += [k for k in row if k not in fields]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, restval="")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in json_safe(row).items()})
    return buf.getvalue()


def write_outputs(
    result: EvaluationResult,
    out_dir: Path,
    *,
    settings: Mapping[str, Any],
    figures: Mapping[str, Figure],
    extra: Mapping[str, Any] | None = None,
    csv_rows: list[dict[str, Any]] | None = None,
    tables: Mapping[str, list[dict[str, Any]]] | None = None,
) -> list[Path]:
    """Write the report files of ``result`` into ``out_dir``; returns their paths.

    Args:
        result: The evaluation (kind, overall metrics, per-tile rows).
        out_dir: Output folder (created).
        settings: Options the metrics depend on, recorded in the JSON.
        figures: PNG name (without suffix) to figure; each is closed once saved.
        extra: More top-level JSON entries (e.g. the confusion matrix).
        csv_rows: Rows of ``metrics.csv``; default: the per-tile rows, then the overall one
            (``prediction`` = ``overall``).
        tables: More CSV files, name (without suffix) to rows.
    """
    import matplotlib.pyplot as plt

    pngs: dict[str, bytes] = {}  # rendered before anything is written: a failing figure writes nothing
    for name, fig in figures.items():
        buf = io.BytesIO()
        try:
            fig.savefig(buf, dpi=100, format="png")
        finally:
            plt.close(fig)
        pngs[name] = buf.getvalue()
    report = {
        "kind": result.kind,
        "metrics": result.metrics,
        "per_tile": result.per_tile,
        "settings": dict(settings),
        **(extra or {}),
    }
    rows = (
        csv_rows if csv_rows is not None else [*result.per_tile, {"prediction": "overall", **result.metrics}]
    )
    texts = {
        JSON_NAME: json.dumps(json_safe(report), indent=2) + "\n",
        CSV_NAME: _csv_text(rows),
        **{f"{name}.csv": _csv_text(table) for name, table in (tables or {}).items()},
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for file_name, text in texts.items():
        files.append(out_dir / file_name)
        write_text_atomic(files[-1], text)
    for name, data in pngs.items():
        files.append(out_dir / f"{name}.png")
        with atomic_output(files[-1]) as tmp:
            tmp.write_bytes(data)
    return files
