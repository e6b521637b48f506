"""The report stage: ``report.md`` (and ``report.html``) with metrics tables and figures.

Written to ``<out>/report/`` and logged to the parent run's ``report/`` artifacts, so the MLflow
UI shows it beside the stage runs. Everything comes from the stages' recorded outputs.
"""

from __future__ import annotations

import logging
import shlex
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from satcnn.pipeline import figures
from satcnn.pipeline.context import Outputs, StageContext

log = logging.getLogger(__name__)

__all__ = ["markdown_to_html", "report_run"]


def _table(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> list[str]:
    def cell(value: Any) -> str:
        return f"{value:.4f}" if isinstance(value, float) else str(value).replace("|", "\\|")

    head = list(header)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return [*lines, ""]


def _metrics_table(metrics: Mapping[str, float]) -> list[str]:
    """Overall metrics in one table; ``<metric>/<class>`` ones in a class-by-metric table below."""
    overall = sorted((k, v) for k, v in metrics.items() if "/" not in k)
    per_class: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        if "/" in key:
            name, cls = key.split("/", 1)
            per_class.setdefault(cls, {})[name] = value
    lines = _table(("metric", "value"), overall)
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
    lines += _table(("class", *counts), [(c, *(counts[s].get(c, 0) for s in counts)) for c in classes])
    fractions: dict[str, dict[str, float]] = infer.get("class_fractions") or {}
    if fractions:
        lines += ["## Class fractions", ""]
        lines += _table(
            ("tile", *classes),
            [(Path(t).name, *(f.get(c, 0.0) for c in classes)) for t, f in fractions.items()],
        )
    lines += ["## Class maps", ""]
    for i, (image, outs) in enumerate(infer["outputs"].items()):
        if outs:
            png = figures.class_map_figure(image, outs[0], classes, out / f"classes_{i}.png")
            _figure(lines, png, f"{Path(image).name}: class map over the input")


_STYLE = (
    "body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:2px 8px}img{max-width:100%}"
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
        lines += ["## Training (test split)", "", *_metrics_table(up["fit"]["test_metrics"])]
    if evaluation.get("metrics"):
        lines += [
            f"## Evaluation ({evaluation.get('kind', spec.task)})",
            "",
            *_metrics_table(evaluation["metrics"]),
        ]
        per_tile = evaluation.get("per_tile") or []
        if per_tile:
            keys = list(per_tile[0])
            lines += _table(keys, [[row.get(k, "") for k in keys] for row in per_tile])
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
