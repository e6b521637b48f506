"""Run parameters: MLflow's limit on a value, a nested config as flat params, batched logging."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PARAM_VALUE_LIMIT = 6000  # MLflow's limit on a parameter value
PARAM_BATCH = 100  # MLflow's limit on params per log_batch


def param_value(value: Any) -> str:
    """``value`` as a parameter value: its string, cut to MLflow's limit of 6000 characters."""
    return str(value)[:PARAM_VALUE_LIMIT]


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": "1"}``; lists and scalars become (cut) strings."""
    flat: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = param_value(value)
    return flat


def log_params(client: Any, run_id: str, params: Mapping[str, str]) -> None:
    """Log params in batches of 100 (MLflow's limit), skipping keys the run already has."""
    from mlflow.entities import Param

    existing = client.get_run(run_id).data.params
    fresh = [Param(k, param_value(v)) for k, v in params.items() if k not in existing]
    for start in range(0, len(fresh), PARAM_BATCH):
        client.log_batch(run_id, params=fresh[start : start + PARAM_BATCH])
