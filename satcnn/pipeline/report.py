"""The report stage: ``report.md`` (and ``report.html``) with metrics tables and figures.

Written to ``<out>/report/`` and logged to the parent run's ``report/`` artifacts, so the MLflow
UI shows it beside the stage runs. Everything comes from the stages' recorded outputs.
"""

from __future__ import annotations

import logging
import math
import numbers
import shlex
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path, PurePath
from typing import Any

from satcnn.pipeline import figures
from satcnn.pipeline.context import Outputs, StageContext

log = logging.getLogger(__name__)

__all__ = ["format_value", "markdown_to_html", "metrics_table", "per_tile_tables", "report_run"]


# Metrics that count things (pixels, patches, tiles, confusion cells): printed as integers.
COUNT_NAMES = frozenset(
    {"pixels", "patches", "tiles", "road_pixels", "support", "true_positives", "false_positives",
     "false_negatives", "true_negatives", "tp", "fp", "fn", "tn", "n", "count"}
)  # fmt: skip
PATH_COLUMNS = frozenset({"prediction", "truth", "image", "tile", "input", "output"})
SCORE_DECIMALS = 3


def is_count(name: str) -> bool:
    """Whether the metric or column ``name`` counts things (``support_water`` and ``pixels/road`` too)."""
    base = name.split("/", 1)[0]
    return base in COUNT_NAMES or any(base.startswith(f"{c}_") for c in ("support", "n"))


def format_value(name: str, value: Any) -> str:
    """``value`` of metric or column ``name`` as a table shows it: counts as integers, scores to 3
    decimals, undefined values as ``n/a``, file paths by file name."""
    if isinstance(value, bool) or value is None or value == "":
        return "" if value is None else str(value)
    if isinstance(value, numbers.Real):
        if not math.isfinite(value):
            return "n/a"
        if is_count(name) or isinstance(value, numbers.Integral):
            return str(round(value))
        return f"{value:.{SCORE_DECIMALS}f}"
    text = str(value)
    if name in PATH_COLUMNS and ("/" in text or "\\" in text):
        text = PurePath(text).name
    return text.replace("|", "\\|")


def _table(
    header: Iterable[str], rows: Iterable[Iterable[Any]], names: Iterable[str] | None = None
) -> list[str]:
    """A Markdown table; ``names`` (default: the header) say how each column's values are formatted."""
    head = list(header)
    kinds = list(names) if names is not None else head
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += [
        "| " + " | ".join(format_value(k, v) for k, v in zip(kinds, row, strict=True)) + " |" for row in rows
    ]
    return [*lines, ""]


def _metric_rows(metrics: Iterable[tuple[str, Any]]) -> list[str]:
    """A metric/value table, each value formatted by its metric's kind."""
    rows = list(metrics)
    lines = ["| metric | value |", "|---|---|"]
    lines += [f"| {k} | {format_value(k, v)} |" for k, v in rows]
    return [*lines, ""]


def per_tile_tables(per_tile: list[dict[str, Any]]) -> list[str]:
    """Per-tile rows as two tables that fit the page: the scores, then the counts."""
    keys = list(per_tile[0])
    ids = [k for k in keys if k in PATH_COLUMNS]
    scores = [k for k in keys if k not in PATH_COLUMNS and not is_count(k)]
    counts = [k for k in keys if k not in PATH_COLUMNS and is_count(k)]
    lines: list[str] = []
    for columns in (ids + scores, ids + counts):
        if len(columns) > len(ids):
            lines += _table(columns, [[row.get(k, "") for k in columns] for row in per_tile])
    return lines


def metrics_table(metrics: Mapping[str, float]) -> list[str]:
    """Overall metrics in one table; ``<metric>/<class>`` ones in a class-by-metric table below."""
    overall = sorted((k, v) for k, v in metrics.items() if "/" not in k)
    per_class: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        if "/" in key:
            name, cls = key.split("/", 1)
            per_class.setdefault(cls, {})[name] = value
    lines = _metric_rows(overall)
    if per_class:
        names = sorted({n for row in per_class.values() for n in row})
        lines += _table(
            ("class", *names), [(c, *(row.get(n, "") for n in names)) for c, row in per_class.items()]
        )
    return lines


def _stages_section(ctx: StageContext) -> list[str]:
    rows = [
        (name, f"`{out.get('run_id', '')}`", "reused" if name in ctx.reused else "ran")
        for name, out in ctx.upstream.items()
    ]
    return ["## Stages", "", *_table(("stage", "MLflow run", "this time"), rows)]


def _figure(lines: list[str], path: Path, caption: str) -> None:
    lines += [f"![{caption}]({path.name})", "", f"*{caption}*", ""]


def _fit_figures(ctx: StageContext, out: Path) -> list[Path]:
    """The fit run's test confusion matrix (classifiers), copied next to the report."""
    client, run_id = ctx.tracker.client, ctx.upstream["fit"]["run_id"]
    names = [
        a.path for a in client.list_artifacts(run_id, "figures") if "confusion" in a.path and "test" in a.path
    ]
    copied = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            local = Path(client.download_artifacts(run_id, name, tmp))
            copied.append(Path(shutil.copyfile(local, out / f"fit_{local.name}")))
    return copied


def _roads_body(ctx: StageContext, out: Path, lines: list[str]) -> None:
    produced: dict[str, list[str]] = ctx.upstream["infer"]["outputs"]
    truths: dict[str, str] = ctx.upstream["validate"]["truths"]
    threshold = float(ctx.upstream["infer"].get("threshold") or 0.5)
    lines += ["## Road maps", ""]
    for i, (image, outs) in enumerate(produced.items()):
        if not outs:
            continue
        if image in truths:
            png = figures.road_figure(image, truths[image], outs[0], out / f"roads_{i}.png", threshold)
            caption = (
                f"{Path(image).name}: input, truth, probability, overlay "
                "(yellow hit, red missed, cyan false alarm)"
            )
        else:
            png = figures.prediction_figure(image, outs[0], out / f"roads_{i}.png", threshold)
            caption = f"{Path(image).name}: input, probability, predicted roads (no truth)"
        _figure(lines, png, caption)


def _landcover_body(ctx: StageContext, out: Path, lines: list[str]) -> None:
    infer = ctx.upstream["infer"]
    classes: list[str] = ctx.upstream["validate"]["classes"]
    counts: dict[str, dict[str, int]] = ctx.upstream["validate"].get("patch_counts", {})
    lines += ["## Training patches", ""]
    lines += _table(
        ("class", *counts),
        [(c, *(counts[s].get(c, 0) for s in counts)) for c in classes],
        ("class", *(["count"] * len(counts))),
    )
    fractions: dict[str, dict[str, float]] = infer.get("class_fractions") or {}
    if fractions:
        lines += ["## Class fractions", ""]
        lines += _table(
            ("tile", *classes),
            [(Path(t).name, *(f.get(c, 0.0) for c in classes)) for t, f in fractions.items()],
            ("tile", *(["fraction"] * len(classes))),
        )
    lines += ["## Class maps", ""]
    for i, (image, outs) in enumerate(infer["outputs"].items()):
        if outs:
            png = figures.class_map_figure(image, outs[0], classes, out / f"classes_{i}.png")
            _figure(lines, png, f"{Path(image).name}: class map over the input")


# Tables never widen the page: a wide one scrolls inside its own box; numbers align right.
_STYLE = (
    "body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
    "table{border-collapse:collapse;display:block;max-width:100%;overflow-x:auto;margin-bottom:1em}"
    "td,th{border:1px solid #ccc;padding:2px 8px;white-space:nowrap}"
    "td{font-variant-numeric:tabular-nums}img{max-width:100%}"
)


def markdown_to_html(markdown: str, title: str) -> str:
    """A standalone HTML page of ``markdown`` (markdown-it-py, tables on)."""
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark").enable("table").render(markdown)
    head = f"<meta charset='utf-8'><title>{title}</title><style>{_STYLE}</style>"
    return f"<!doctype html><html><head>{head}</head><body>{body}</body></html>\n"


def report_run(ctx: StageContext, run_id: str | None) -> Outputs:
    """Write the report from the stages' outputs and log it to the parent run."""
    out = ctx.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    spec, up = ctx.spec, ctx.upstream
    title = f"satcnn pipeline {spec.name}"
    lines = [
        f"# {title}",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; pipeline file `{spec.path.name}`; parent MLflow run "
        f"`{ctx.tracker.parent_id}`; registered model `{up['register']['model_uri']}`.",
        "",
    ]
    lines += [
        f"See the outputs on a map (imagery, probability, mask, class map, road graph): "
        f"`satcnn view {shlex.quote(str(spec.out))}`, then open the address it prints.",
        "",
    ]
    lines += _stages_section(ctx)
    evaluation = up.get("evaluate", {})
    if up["fit"].get("test_metrics") and up["fit"]["test_metrics"] != evaluation.get("metrics"):
        lines += ["## Training (test split)", "", *metrics_table(up["fit"]["test_metrics"])]
    if evaluation.get("metrics"):
        lines += [
            f"## Evaluation ({evaluation.get('kind', spec.task)})",
            "",
            *metrics_table(evaluation["metrics"]),
        ]
        per_tile = evaluation.get("per_tile") or []
        if per_tile:
            lines += per_tile_tables(per_tile)
    for png in [Path(f) for f in evaluation.get("files", []) if str(f).endswith(".png")]:
        _figure(lines, Path(shutil.copyfile(png, out / f"evaluate_{png.name}")), png.stem.replace("_", " "))
    for png in _fit_figures(ctx, out):
        _figure(lines, png, "confusion matrix of the test patches (fit)")
    (_roads_body if spec.task == "roads" else _landcover_body)(ctx, out, lines)
    markdown = "\n".join(lines)
    (out / "report.md").write_text(markdown)
    (out / "report.html").write_text(markdown_to_html(markdown, title))
    assert ctx.tracker.parent_id is not None
    ctx.tracker.log_folder(ctx.tracker.parent_id, out, "report")
    pngs = sorted(str(p) for p in out.glob("*.png"))
    return {"report": str(out / "report.md"), "html": str(out / "report.html"), "figures": pngs,
            "files": [str(out / "report.md"), *pngs]}  # fmt: skip
