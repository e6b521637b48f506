"""Each stage's keys, their types and ranges: checked when the pipeline file is read, before any stage runs.

A stage's keys are what the stage reads: the fit's shorthand keys (``config``, ``epochs``, ...),
the ``infer`` fields of ``InferenceOptions`` marked ``stage=True``, the ``evaluate roads`` options
a stage passes on. A misspelt key is refused with the nearest valid one (``epocs``: did you mean
``epochs``?), a value of the wrong type or out of range names the file, stage and key. The
``fit.args`` options are ``satcnn fit`` options, checked by the fit's own parser.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from satcnn.checks import OptionError, require_at_least
from satcnn.errors import ConfigError
from satcnn.evaluate.options import EvaluateRoadsOptions
from satcnn.flags import check_keys, stage_keys
from satcnn.inference.options import InferenceOptions

__all__ = ["STAGE_KEYS", "check_stage_settings", "fit_configs"]

Kind = type | tuple[type, ...]
_PATHS: Kind = (str, list)

STAGE_KEYS: dict[str, dict[str, Kind]] = {
    "validate": {
        "scenes": _PATHS,
        "patches": _PATHS,
        "held_out": _PATHS,
        "val_scenes": _PATHS,
        "extra_inputs": _PATHS,
        "allow_no_crs": bool,
        "aliases": dict,
        "bands": int,
    },
    "fit": {"config": str, "overlays": _PATHS, "epochs": int, "args": dict, "test": bool},
    "register": {"name": str, "alias": str},
    "infer": {},  # from InferenceOptions (below)
    "evaluate": {"predictions": _PATHS, "truths": _PATHS, "graph": bool},  # and the evaluate options (below)
    "report": {},
}
"""Each stage's keys and the YAML types their values take (``float`` also takes an integer)."""

_MINIMUM = {"fit": {"epochs": 1}, "validate": {"bands": 1}}
"""Lower bounds of keys no options class checks."""

_EVALUATE_OPTIONS = ("threshold", "rho", "buffer_m")  # passed on to EvaluateRoadsOptions


def _field_kind(cls: type, name: str) -> Kind | None:
    """The YAML type of field ``name`` of options class ``cls`` (None: not checked here)."""
    field = {f.name: f for f in dataclasses.fields(cls)}[name]
    parse = field.metadata.get("type")
    if parse in (int, float):
        return parse  # type: ignore[no-any-return]
    if isinstance(field.default, bool | int | float):
        return type(field.default)
    return None


for _key in _EVALUATE_OPTIONS:
    STAGE_KEYS["evaluate"][_key] = _field_kind(EvaluateRoadsOptions, _key) or object
for _key in stage_keys(InferenceOptions):
    _kind = _field_kind(InferenceOptions, _key)
    STAGE_KEYS["infer"][_key] = _kind if _kind is not None else object
STAGE_KEYS["infer"]["inputs"] = _PATHS


def _type_name(kind: Kind) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {str: "a string", list: "a list", dict: "a mapping", bool: "true or false"}
    names |= {int: "a whole number", float: "a number"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _has_kind(value: Any, kind: Kind) -> bool:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool):
        return bool in kinds or object in kinds
    if isinstance(value, int) and float in kinds:
        return True
    return isinstance(value, kinds)


def _check_options(where: str, build: Callable[..., Any], values: Mapping[str, Any]) -> None:
    """Build an options object from ``values`` so that its own checks run; a failure names the key."""
    try:
        build(**values)
    except OptionError as err:
        raise ConfigError(f"{where}: {err.option} {err.problem}") from None
    except (TypeError, ValueError) as err:  # a value of a type the options class cannot take
        raise ConfigError(f"{where}: {' '.join(str(err).split())}") from None


def _at_least(key: str, low: int) -> Callable[[Any], None]:
    return lambda value: require_at_least(key, value, low)


def fit_configs(settings: Mapping[str, Any]) -> list[str]:
    """The fit stage's ``config`` and ``overlays`` (one path or a list), in order."""
    overlays = settings.get("overlays") or []
    return [
        str(c)
        for c in [settings.get("config"), *([overlays] if isinstance(overlays, str) else overlays)]
        if c
    ]


def check_stage_settings(file: Path, stages: Mapping[str, Mapping[str, Any] | None]) -> None:
    """Refuse unknown keys, values of the wrong type and values out of range in any stage.

    Raises:
        ConfigError: ``<file>: stage 'fit': unknown setting(s) epocs; ...; did you mean epochs?`` or
            ``<file>: stage 'fit': epochs must be a whole number, got 'abc'``.
    """
    for stage, settings in stages.items():
        where = f"{file}: stage {stage!r}"
        given = {k: v for k, v in (settings or {}).items() if v is not None}
        check_keys(given, tuple(STAGE_KEYS[stage]), where)
        for key, value in given.items():
            kind = STAGE_KEYS[stage][key]
            if not _has_kind(value, kind):
                raise ConfigError(f"{where}: {key} must be {_type_name(kind)}, got {value!r}")
        if stage == "fit":  # the fit's configs exist (read by the fit, after validate has run)
            for config in fit_configs(given):
                if not Path(config).expanduser().is_file():
                    raise ConfigError(f"{where}: config file {config} not found")
        for key, low in _MINIMUM.get(stage, {}).items():
            _check_options(where, _at_least(key, low), {"value": given.get(key)})
        if stage == "infer":
            _check_options(
                where,
                InferenceOptions,
                {"model": "model.ckpt", "inputs": ["in.tif"], "output_dir": ".", **given},
            )
        if stage == "evaluate":
            chosen = {k: given[k] for k in _EVALUATE_OPTIONS if k in given}
            _check_options(
                where, EvaluateRoadsOptions, {"pred": ["p.tif"], "truth": ["t.tif"], "out_dir": ".", **chosen}
            )
