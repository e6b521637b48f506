"""``run_pipeline``: the stages in order, each a nested MLflow run, skipped when its key is unchanged.

For each stage the runner computes its key (:func:`satcnn.pipeline.keys.stage_key` over the
output folder, the stage's settings, the outputs of the stages before it, and its input files), looks for a
complete FINISHED run of that stage with that key, and reuses it (run id and ``stage.json``
outputs) when its files still exist. Otherwise it marks runs of that key left RUNNING by a
killed pipeline KILLED, starts a new nested run, runs the stage, records its outputs and ends the
run FINISHED (FAILED on error). A killed pipeline thus resumes at the stage that did not finish,
and the parent run it left unfinished is continued.

Test hook: with ``SATCNN_PIPELINE_KILL_AT=<stage>`` the runner kills its own process (SIGKILL)
just after that stage's run is created, as a crash or an out-of-memory kill would;
``<stage>:TERM`` sends SIGTERM instead (as ``kill`` or a job scheduler would).
"""

from __future__ import annotations

import json
import logging
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from satcnn.pipeline.context import Outputs, StageContext, StageDef
from satcnn.pipeline.keys import stage_key
from satcnn.pipeline.predict import evaluate_run, infer_run
from satcnn.pipeline.report import report_run
from satcnn.pipeline.spec import STAGES, PipelineSpec
from satcnn.pipeline.tracking import PipelineTracker
from satcnn.pipeline.train import fit_inputs, fit_run, register_run
from satcnn.pipeline.validate import validate_inputs, validate_run

log = logging.getLogger(__name__)

__all__ = ["KILL_ENV", "STAGE_DEFS", "PipelineResult", "run_pipeline"]

KILL_ENV = "SATCNN_PIPELINE_KILL_AT"

STAGE_DEFS: dict[str, StageDef] = {
    "validate": StageDef(validate_run, validate_inputs),
    "fit": StageDef(fit_run, fit_inputs),
    "register": StageDef(register_run),
    "infer": StageDef(infer_run),
    "evaluate": StageDef(evaluate_run, own_run=True),
    "report": StageDef(report_run),
}


@dataclass
class PipelineResult:
    """What a pipeline run did.

    Attributes:
        parent_run_id: The parent MLflow run.
        tracking_uri: The store.
        outputs: Each stage's outputs, with its ``run_id``.
        reused: Stages whose earlier runs were reused.
    """

    parent_run_id: str
    tracking_uri: str
    outputs: dict[str, Outputs] = field(default_factory=dict)
    reused: list[str] = field(default_factory=list)

    @property
    def report(self) -> Path:
        """The Markdown report."""
        return Path(self.outputs["report"]["report"])


def _json(outputs: Outputs) -> Outputs:
    """Outputs as they read back from ``stage.json`` (so keys match between runs and reruns)."""
    data = json.loads(json.dumps(outputs, default=str))
    assert isinstance(data, dict)
    return data


def _files_exist(outputs: Outputs) -> bool:
    return all(Path(f).exists() for f in outputs.get("files", []))


def _run_stage(ctx: StageContext, stage: StageDef, tracker: PipelineTracker) -> Outputs:
    """Run one stage in a new nested run (or its own, for ``own_run``); returns outputs with ``run_id``."""
    tracker.abandon_unfinished(ctx.name, ctx.key)
    run_id = None if stage.own_run else tracker.create_stage_run(ctx.name, ctx.key)
    stage_name, _, signame = os.environ.get(KILL_ENV, "").partition(":")
    if stage_name == ctx.name:
        log.warning("%s: killing the pipeline at the start of stage %s", KILL_ENV, ctx.name)
        os.kill(os.getpid(), signal.Signals[f"SIG{signame or 'KILL'}"])
    try:
        outputs = stage.run(ctx, run_id)
    except BaseException:
        if run_id is not None:
            tracker.fail_stage(run_id)
        raise
    run_id = run_id or str(outputs.pop("run_id"))
    outputs = _json(outputs)
    tracker.complete_stage(run_id, ctx.name, outputs, terminate=True)
    return {**outputs, "run_id": run_id}


def _params(spec: PipelineSpec) -> dict[str, str]:
    params = {"pipeline_file": str(spec.path), "task": spec.task, "out": str(spec.out)}
    for stage, settings in spec.stages.items():
        for key, value in settings.items():
            params[f"{stage}.{key}"] = json.dumps(value, default=str)
    return params


def run_pipeline(spec: PipelineSpec) -> PipelineResult:
    """Run (or resume) the pipeline ``spec``; see the module docstring.

    Raises:
        SatcnnError: A stage's input check or work failed (the parent run ends FAILED).
    """
    tracker = PipelineTracker(spec.experiment, spec.tracking_uri)
    parent = tracker.start_parent(spec.name, spec.out, _params(spec))
    result = PipelineResult(parent, tracker.tracking_uri)
    status = "FAILED"
    try:
        for name in STAGES:
            stage = STAGE_DEFS[name]
            ctx = StageContext(
                spec, name, spec.stage(name), dict(result.outputs), tracker, reused=list(result.reused)
            )
            settings: dict[str, Any] = {
                "task": spec.task,
                "out": str(spec.out),
                "settings": ctx.settings,
                "upstream": ctx.upstream,
            }
            ctx.key = stage_key(name, settings, stage.inputs(ctx))
            found = tracker.finished_stage(name, ctx.key)
            if found is not None and _files_exist(found[1]):
                run_id, outputs = found
                tracker.client.set_tag(parent, f"satcnn.stage.{name}", run_id)
                result.outputs[name] = {**outputs, "run_id": run_id}
                result.reused.append(name)
                log.info("stage %s: unchanged, reusing MLflow run %s", name, run_id)
                continue
            log.info("stage %s: running (key %s)", name, ctx.key[:12])
            result.outputs[name] = _run_stage(ctx, stage, tracker)
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        tracker.end_parent(status)
    return result
