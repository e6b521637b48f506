"""A pipeline file: its stages and their settings, with command-line overrides applied.

A pipeline file is YAML::

    name: roads                      # also the MLflow experiment "satcnn-pipeline-roads"
    task: roads                      # roads | landcover: what validate, evaluate and report do
    out: outputs/pipelines/roads     # every stage writes under this folder
    stages:                          # run in the fixed order validate, fit, register, infer, evaluate, report
      validate: {...}
      fit: {...}

Overrides (``--set fit.epochs=1``) address a stage's setting by ``<stage>.<key>[.<key>...]`` or a
top-level key by its name; values are parsed as YAML (``--set infer.inputs=[a.tif,b.tif]``).
Under ``fit.args`` the rest is one dotted ``satcnn fit`` option: ``--set fit.args.data.init_args.
batch_size=4``.
Relative paths in the file are relative to the working directory, as on the command line.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast, get_args

import yaml

from satcnn.errors import ConfigError, require_file
from satcnn.flags import stage_keys
from satcnn.inference.options import InferenceOptions
from satcnn.pipeline.settings import check_stage_settings

__all__ = ["INFER_OPTIONS", "STAGES", "PipelineSpec", "Task", "apply_overrides", "load_spec"]

STAGES: tuple[str, ...] = ("validate", "fit", "register", "infer", "evaluate", "report")
Task = Literal["roads", "landcover"]
TOP_LEVEL = ("name", "task", "out", "experiment", "tracking_uri", "stages")


@dataclass(frozen=True)
class PipelineSpec:
    """A resolved pipeline file.

    Attributes:
        path: The file it was read from.
        name: The pipeline's name.
        task: ``roads`` or ``landcover``.
        out: Output folder of every stage.
        experiment: MLflow experiment of the parent and stage runs.
        tracking_uri: MLflow store, or None for ``default_tracking_uri()``.
        stages: Each stage's settings (a stage left out of the file has ``{}``).
        command: The command line that runs (and resumes) this pipeline, or "" when not known.
    """

    path: Path
    name: str
    task: Task
    out: Path
    experiment: str
    tracking_uri: str | None
    stages: dict[str, dict[str, Any]]
    command: str = ""

    def stage(self, name: str) -> dict[str, Any]:
        """A copy of one stage's settings."""
        return copy.deepcopy(self.stages.get(name, {}))


def _parse_override(text: str) -> tuple[list[str], Any]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. --set fit.epochs=1")
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError as err:
        raise ConfigError(f"--set {text!r}: the value is not valid YAML ({err})") from None
    return key.strip().split("."), parsed


def apply_overrides(raw: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """``raw`` with each ``KEY=VALUE`` override set; a stage name as first key means ``stages.<stage>``."""
    data = copy.deepcopy(dict(raw))
    for text in overrides:
        keys, value = _parse_override(text)
        if keys[0] in STAGES:
            keys = ["stages", *keys]
            if len(keys) > 4 and keys[2] == "args":  # fit.args keys are dotted CLI options
                keys = [*keys[:3], ".".join(keys[3:])]
        elif keys[0] not in TOP_LEVEL:
            raise ConfigError(
                f"--set {text!r}: unknown key {keys[0]!r}; expected a stage ({', '.join(STAGES)}) "
                f"or one of {', '.join(TOP_LEVEL[:-1])}"
            )
        node = data
        for key in keys[:-1]:
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {text!r}: {key!r} is not a mapping")
            node = child
        node[keys[-1]] = value
    return data


INFER_OPTIONS = tuple(k for k in stage_keys(InferenceOptions) if k != "inputs")
"""The ``satcnn infer`` options an ``infer`` stage takes besides ``inputs``: the fields marked ``stage``."""


def load_spec(path: str | Path, overrides: Sequence[str] = (), out: str | Path | None = None) -> PipelineSpec:
    """Read a pipeline file, apply ``overrides`` and ``out``, and check its shape.

    Raises:
        InputFileNotFoundError: No such file.
        ConfigError: Not YAML, an unknown stage or task, a stage that is not a mapping, a bad override.
    """
    file = require_file(path, "pipeline file")
    try:
        raw = yaml.safe_load(file.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{file}: not valid YAML ({err})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: expected a mapping with name, task, out and stages")
    data = apply_overrides(raw, overrides)
    if out is not None:
        data["out"] = str(out)
    unknown = sorted(set(data) - set(TOP_LEVEL))
    if unknown:
        raise ConfigError(f"{file}: unknown key(s) {', '.join(unknown)}; expected {', '.join(TOP_LEVEL)}")
    stages = data.get("stages") or {}
    if not isinstance(stages, dict) or any(s not in STAGES for s in stages):
        names = sorted(stages) if isinstance(stages, dict) else stages
        raise ConfigError(
            f"{file}: stages must map stage names ({', '.join(STAGES)}) to settings, got {names}"
        )
    for stage, settings in stages.items():
        if settings is not None and not isinstance(settings, dict):
            raise ConfigError(f"{file}: stage {stage!r} must be a mapping of settings, got {settings!r}")
    # a misspelt key or a bad value must not be ignored or fail late (checked before any stage runs)
    check_stage_settings(file, stages)
    task = data.get("task")
    if task not in get_args(Task):
        raise ConfigError(f"{file}: task must be one of {', '.join(get_args(Task))}, got {task!r}")
    name = str(data.get("name") or file.stem)
    return PipelineSpec(
        path=file,
        name=name,
        task=cast(Task, task),
        out=Path(str(data.get("out") or f"outputs/pipelines/{name}")).expanduser().resolve(),
        experiment=str(data.get("experiment") or f"satcnn-pipeline-{name}"),
        tracking_uri=data.get("tracking_uri"),
        stages={s: dict(stages.get(s) or {}) for s in STAGES},
    )
