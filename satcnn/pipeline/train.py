"""The fit and register stages.

Fit runs ``python -m satcnn fit`` in a child process: Lightning owns its process state (seeds,
signal handlers, the trainer's globals), and a crash or kill of the fit cannot leave the runner
in a half-set state. The runner creates the stage run first and hands its id to the fit's MLflow
logger (``--trainer.logger.init_args.run_id``), so the fit logs into the nested stage run and the
runner knows the run id without reading the child's output. The child dies with the runner
(``PR_SET_PDEATHSIG``), so a killed pipeline leaves no orphaned fit.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from satcnn.errors import RESUME_HINT_ENV, ConfigError, SignalInterrupt, require_file
from satcnn.pipeline.context import Outputs, StageContext, StageError
from satcnn.pipeline.settings import fit_configs
from satcnn.pipeline.spec import PipelineSpec

log = logging.getLogger(__name__)

__all__ = ["check_fit_options", "fit_argv", "fit_inputs", "fit_run", "register_run"]

_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_STOP_WAIT_S = 60  # how long an interrupted fit may take to save its checkpoint


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _arg(value: Any) -> str:
    """A value as LightningCLI parses it: booleans lower-case, lists and mappings as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return "null" if value is None else str(value)


def fit_inputs(ctx: StageContext) -> list[Path]:
    """The config files the fit reads (their content is part of the key)."""
    return [Path(c).expanduser().resolve() for c in fit_configs(ctx.settings)]


def fit_argv(ctx: StageContext, run_id: str) -> list[str]:
    """``satcnn fit`` arguments: the configs, the validate stage's data options, ``args``, epochs,
    and the MLflow logger pointed at the stage run."""
    configs = fit_inputs(ctx)
    if not configs:
        raise StageError(f"{ctx.spec.path}: fit.config must name a training config (configs/...)")
    argv = ["fit"]
    for config in configs:
        argv += ["--config", str(require_file(config, "fit config"))]
    options: dict[str, Any] = dict(ctx.upstream.get("validate", {}).get("data_args", {}))
    options.update(ctx.get("args", {}))
    if ctx.get("epochs") is not None:
        options["trainer.max_epochs"] = int(ctx.get("epochs"))
    options.update(
        {
            "trainer.logger.init_args.run_id": run_id,
            "trainer.logger.init_args.tracking_uri": ctx.tracker.tracking_uri,
            "trainer.default_root_dir": str(ctx.out),
            "trainer.enable_progress_bar": False,
            "test_after_fit": bool(ctx.get("test", True)),
        }
    )
    for key, value in options.items():
        argv += [f"--{key.removeprefix('--')}", _arg(value)]
    return argv


def check_fit_options(spec: PipelineSpec) -> None:
    """Parse the fit stage's configs and options with ``satcnn fit``'s own parser, training nothing.

    Runs ``python -m satcnn fit ... --print_config`` (a few seconds: Lightning's import) so that a
    misspelt ``fit.args`` option or a value of the wrong type stops the pipeline before any stage.

    Raises:
        ConfigError: ``<file>: stage 'fit': <the parser's one line>``.
    """
    fit = spec.stage("fit")
    if not fit.get("config"):
        return
    argv = [sys.executable, "-m", "satcnn", "fit"]
    for config in fit_configs(fit):
        argv += ["--config", str(Path(str(config)).expanduser())]
    options = dict(fit.get("args") or {})
    if fit.get("epochs") is not None:
        options["trainer.max_epochs"] = fit["epochs"]
    for key, value in options.items():
        argv += [f"--{str(key).removeprefix('--')}", _arg(value)]
    done = subprocess.run([*argv, "--print_config"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [
            ln for ln in done.stderr.splitlines() if ln.startswith("satcnn")
        ] or done.stderr.splitlines()[-1:]
        problem = lines[-1].split("error: ", 1)[-1] if lines else f"exit status {done.returncode}"
        raise ConfigError(f"{spec.path}: stage 'fit': {problem.removesuffix(' (all options: --help)')}")


def _stop_child(child: subprocess.Popen[bytes], stop: BaseException) -> None:
    """Let the fit end as it does on a signal (last checkpoint, run marked KILLED), then reap it.

    Ctrl-C reaches the fit itself (same process group); a SIGTERM to the runner is passed on.
    """
    if child.poll() is None and isinstance(stop, SignalInterrupt):
        child.send_signal(stop.signum)
    try:
        child.wait(timeout=_STOP_WAIT_S)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        child.kill()
        child.wait()


def fit_run(ctx: StageContext, run_id: str | None) -> Outputs:
    """Train in a child ``python -m satcnn fit`` that logs into the stage run ``run_id``."""
    assert run_id is not None
    argv = [sys.executable, "-m", "satcnn", *fit_argv(ctx, run_id)]
    log.info("fit: %s", " ".join(argv))
    ctx.out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if ctx.spec.command:  # an interrupted fit says how to resume the pipeline, not the fit alone
        env[RESUME_HINT_ENV] = f"resume with `{ctx.spec.command}`"
    child = subprocess.Popen(argv, preexec_fn=_die_with_parent, env=env)
    try:
        status = child.wait()
    except BaseException as stop:
        _stop_child(child, stop)
        raise
    if status != 0:
        raise StageError(
            f"stage fit: `python -m satcnn fit` exited with status {status} (its messages are above); "
            f"MLflow run {run_id}"
        )
    from satcnn.tracking.registry import find_logged_model

    client = ctx.tracker.client
    logged = find_logged_model(client, run_id)  # an MLflow 3 logged model, not a run artifact
    if logged is None:
        raise StageError(f"stage fit: MLflow run {run_id} logged no model (was checkpointing off?)")
    run = client.get_run(run_id)
    metrics = {k: float(v) for k, v in sorted(run.data.metrics.items()) if k.startswith("test_")}
    return {
        "model_uri": f"runs:/{run_id}/{logged.name}",
        "checkpoint": run.data.tags.get("satcnn.best_checkpoint"),
        "test_metrics": metrics,
    }


def register_run(ctx: StageContext, run_id: str | None) -> Outputs:
    """Register the fit's MLflow model as a new version of ``name`` with ``alias``."""
    from satcnn.tracking.registry import register_model

    assert run_id is not None
    fit = ctx.upstream["fit"]
    name = str(ctx.get("name", f"{ctx.spec.name}-model"))
    alias = ctx.get("alias", "pipeline")
    version = register_model(ctx.tracker.client, fit["run_id"], name, alias=alias)
    uri = f"models:/{name}/{version.version}"
    ctx.tracker.client.log_param(run_id, "model_uri", uri)
    return {"model_uri": uri, "name": name, "version": str(version.version), "alias": alias}
