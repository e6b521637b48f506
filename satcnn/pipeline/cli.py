"""``satcnn pipeline run FILE [--set KEY=VALUE ...] [--out DIR]``: run or resume a pipeline."""

from __future__ import annotations

import dataclasses
import signal
import sys
from dataclasses import dataclass

from satcnn.errors import Interrupted, interrupt_signal
from satcnn.flags import add_subcommand, command_parser, option, parse_subcommand, satcnn_command

__all__ = ["PipelineRunOptions", "pipeline_main"]


@dataclass(frozen=True, kw_only=True)
class PipelineRunOptions:
    """``satcnn pipeline run``: the pipeline file and what overrides its settings."""

    file: str = option(positional=True, help="pipeline file, e.g. pipelines/roads.yaml")
    overrides: list[str] | None = option(
        None,
        flag="--set",
        append=True,
        metavar="KEY=VALUE",
        help="override a setting: <stage>.<key>=<yaml value> (e.g. fit.epochs=1) or a top-level key",
    )
    out: str | None = option(None, help="output folder (default: the file's `out`)")
    tracking_uri: str | None = option(
        None, help="MLflow store (default: $MLFLOW_TRACKING_URI or ./mlflow.db)"
    )


def pipeline_main(argv: list[str]) -> int:
    """Parse ``satcnn pipeline ...`` and run the pipeline; prints where the results are."""
    parser = command_parser(
        prog="satcnn pipeline",
        description="Declarative pipelines (pipelines/*.yaml): validate -> fit -> register -> infer -> "
        "evaluate -> report, each stage a nested MLflow run; unchanged stages are reused on rerun.",
    )
    sub = parser.add_subparsers(dest="action", required=True)
    add_subcommand(sub, "run", PipelineRunOptions, help="run or resume a pipeline file")
    options: PipelineRunOptions = parse_subcommand(parser, argv)

    from satcnn.pipeline.spec import load_spec

    overrides = list(options.overrides or [])
    if options.tracking_uri:
        overrides.append(f"tracking_uri={options.tracking_uri}")
    spec = load_spec(options.file, overrides, out=options.out)  # checked before MLflow is imported

    from satcnn.pipeline.runner import run_pipeline
    from satcnn.pipeline.train import check_fit_options

    check_fit_options(spec)  # fit.args through `satcnn fit`'s parser, before any stage runs

    # the same command reuses the stages that finished (their keys are unchanged)
    spec = dataclasses.replace(spec, command=satcnn_command("pipeline", *argv))
    try:
        result = run_pipeline(spec)
    except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM (satcnn.cli)
        signum = interrupt_signal(stop)
        raise Interrupted(
            f"pipeline {spec.name} interrupted by {signal.Signals(signum).name}; finished stages are "
            f"kept: resume with `{spec.command}`",
            128 + signum,
        ) from None
    reused = f" (reused: {', '.join(result.reused)})" if result.reused else ""
    lines = [
        f"pipeline {spec.name}: done{reused}; parent MLflow run {result.parent_run_id}",
        f"report:  {result.report}  (and {result.report.with_suffix('.html').name})",
        f"outputs: {spec.out}",
        f"map:     {satcnn_command('view', spec.out)}",
        f"MLflow UI: {satcnn_command('ui', '--backend-store-uri', result.tracking_uri)}",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0
