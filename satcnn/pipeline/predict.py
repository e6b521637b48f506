"""The infer and evaluate stages.

Infer runs ``satcnn.inference.run_inference`` in process on the registered model
(``models:/NAME/VERSION``), writing into ``<out>/infer``; its manifest and class fractions are
logged to the stage run (the runner's own run, so ``track=False``). Outputs already current
(same weights digest and settings) are kept, so a resumed pipeline redoes only missing tiles.

Evaluate scores the held-out predictions against truth through ``satcnn.evaluate`` and logs
through its ``log_evaluation``, which makes the stage's run, nested under the parent and tagged
with the inference and training runs.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from satcnn.pipeline.context import Outputs, StageContext, StageError
from satcnn.pipeline.spec import INFER_OPTIONS

log = logging.getLogger(__name__)

__all__ = ["evaluate_run", "infer_run"]


def infer_run(ctx: StageContext, run_id: str | None) -> Outputs:
    """Run the registered model over ``inputs`` (default: the validate stage's ``infer_inputs``)."""
    from satcnn.inference import InferenceOptions, run_inference

    assert run_id is not None
    inputs = ctx.get("inputs") or ctx.upstream["validate"]["infer_inputs"]
    inputs = [inputs] if isinstance(inputs, str) else [str(p) for p in inputs]
    defaults: dict[str, Any] = {"output_type": "both"} if ctx.spec.task == "roads" else {}
    chosen = {k: ctx.settings[k] for k in INFER_OPTIONS if ctx.settings.get(k) is not None}
    options = InferenceOptions(
        model=ctx.upstream["register"]["model_uri"],
        inputs=inputs,
        output_dir=ctx.out,
        progress=False,
        track=False,
        tracking_uri=ctx.tracker.tracking_uri,
        **{**defaults, **chosen},
    )
    report = run_inference(options)
    client = ctx.tracker.client
    for path in (report.manifest, report.class_fractions_csv):
        if path is not None and path.exists():
            client.log_artifact(run_id, str(path))
    client.log_metric(run_id, "tiles", len(report.results))
    client.log_metric(run_id, "megapixels_per_s", report.megapixels_per_s)
    outputs = {str(r.input): [str(p) for p in r.outputs] for r in report.results}
    fractions = {str(r.input): r.class_fractions for r in report.results if r.class_fractions is not None}
    return {
        "outputs": outputs,
        "manifest": str(report.manifest),
        "class_fractions_csv": str(report.class_fractions_csv) if report.class_fractions_csv else None,
        "class_fractions": fractions,
        "threshold": options.threshold,
        "files": [p for paths in outputs.values() for p in paths],
    }


def _evaluate_roads(ctx: StageContext) -> Any:
    from satcnn.evaluate.masks import evaluate_roads

    truths: dict[str, str] = ctx.upstream["validate"]["truths"]
    produced: dict[str, list[str]] = ctx.upstream["infer"]["outputs"]
    missing = [image for image in truths if image not in produced]
    if missing:
        raise StageError(f"stage evaluate: no prediction for held-out scene(s) {', '.join(missing)}")
    predictions = [Path(produced[image][0]) for image in truths]
    result = evaluate_roads(
        predictions,
        [Path(t) for t in truths.values()],
        ctx.out,
        threshold=float(ctx.get("threshold", 0.5)),
        rho=int(ctx.get("rho", 3)),
        buffer_m=ctx.get("buffer_m"),
    )
    if ctx.get("graph", False):
        _add_graph_scores(ctx, result, predictions, [Path(t) for t in truths.values()])
    return result


def _add_graph_scores(ctx: StageContext, result: Any, predictions: list[Path], truths: list[Path]) -> None:
    """``graph: true``: APLS, junction and TOPO F1 of each prediction's road graph against its truth's.

    Both graphs come from rasters (the predicted probability at the stage's threshold, the truth
    mask), vectorised by the one road vectoriser; the overall figure is the mean over tiles. The
    per-tile reports go to ``graph.json`` beside ``metrics.json``.
    """
    from satcnn.evaluate.graph import evaluate_graph
    from satcnn.io.atomic import write_text_atomic

    allow_no_crs = bool(ctx.spec.stages.get("validate", {}).get("allow_no_crs", False))
    scores, reports = [], []
    for pred, truth in zip(predictions, truths, strict=True):
        report = evaluate_graph(
            pred, truth, threshold=float(ctx.get("threshold", 0.5)), allow_no_crs=allow_no_crs
        )
        reports.append(report)
        scores.append({k: float(report[k]) for k in ("apls", "junction_f1", "topo_f1")})
        for row in result.per_tile:
            if Path(row["prediction"]) == pred:
                row.update(scores[-1])
    for key in ("apls", "junction_f1", "topo_f1"):
        result.metrics[key] = sum(s[key] for s in scores) / len(scores)
    path = ctx.out / "graph.json"
    write_text_atomic(
        path, json.dumps({"mean": {k: result.metrics[k] for k in scores[0]}, "per_tile": reports}, indent=2)
    )
    result.files.append(path)


def _evaluate_classes(ctx: StageContext) -> Any:
    from satcnn.evaluate.class_maps import evaluate_classes

    predictions = ctx.get("predictions")
    truths = ctx.get("truths")
    if not predictions or not truths:
        raise StageError(
            "stage evaluate: land cover needs evaluate.predictions (class maps) and evaluate.truths "
            "(label rasters or a labelled patch folder)"
        )
    classes = ctx.upstream["validate"].get("classes")
    maps = [predictions] if isinstance(predictions, str) else list(predictions)
    return evaluate_classes([Path(str(m)) for m in maps], Path(str(truths)), ctx.out, class_names=classes)


def _fit_scores(ctx: StageContext) -> Outputs:
    """Land cover without truth maps: the scores of the fit's test patches, in a stage run of their own."""
    fit = ctx.upstream["fit"]
    run_id = ctx.tracker.create_stage_run(ctx.name, ctx.key)
    client = ctx.tracker.client
    client.set_tag(run_id, "satcnn.training_run_id", fit["run_id"])
    for key, value in fit.get("test_metrics", {}).items():
        client.log_metric(run_id, key, value)
    return {
        "run_id": run_id,
        "kind": "classes (test patches, scored by the fit)",
        "metrics": fit.get("test_metrics", {}),
    }


def evaluate_run(ctx: StageContext, run_id: str | None) -> Outputs:
    """Score the predictions and log the scores as the stage's run (``log_evaluation``)."""
    if ctx.spec.task == "landcover" and not ctx.get("truths"):
        return _fit_scores(ctx)
    from satcnn.evaluate.tracking import INFERENCE_RUN_TAG, TRAINING_RUN_TAG, log_evaluation

    result = _evaluate_roads(ctx) if ctx.spec.task == "roads" else _evaluate_classes(ctx)
    tags = {
        **ctx.tracker.stage_tags(ctx.name, ctx.key),
        INFERENCE_RUN_TAG: ctx.upstream["infer"]["run_id"],
        TRAINING_RUN_TAG: ctx.upstream["fit"]["run_id"],
    }
    parent = tags.pop("mlflow.parentRunId")
    own = log_evaluation(
        result,
        tracking_uri=ctx.tracker.tracking_uri,
        experiment=ctx.spec.experiment,
        tags=tags,
        parent_run_id=parent,
    )
    return {
        "run_id": own,
        "kind": result.kind,
        "metrics": {k: float(v) for k, v in result.metrics.items()},
        "per_tile": result.per_tile,
        "files": [str(f) for f in result.files],
    }
