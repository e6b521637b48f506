"""What a stage is given and what it returns: ``StageContext``, ``StageDef``, ``StageError``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from satcnn.errors import SatcnnError
from satcnn.pipeline.spec import PipelineSpec
from satcnn.pipeline.tracking import PipelineTracker

__all__ = ["Outputs", "StageContext", "StageDef", "StageError"]

Outputs = dict[str, Any]  # JSON-ready: MLflow URIs, paths as strings, metrics


class StageError(SatcnnError, RuntimeError):
    """A stage could not finish (a fit that failed, a model that was not logged)."""


@dataclass
class StageContext:
    """One stage's view of the pipeline.

    Attributes:
        spec: The pipeline.
        name: The stage.
        settings: The stage's settings from the file, overrides applied.
        upstream: Outputs of the stages before it (each with its ``run_id``).
        tracker: The pipeline's MLflow runs.
        key: The stage key (set by the runner before the stage runs).
        reused: Earlier stages whose finished runs this pipeline run reused (not in the key).
    """

    spec: PipelineSpec
    name: str
    settings: dict[str, Any]
    upstream: dict[str, Outputs]
    tracker: PipelineTracker
    key: str = ""
    reused: list[str] = field(default_factory=list)

    @property
    def out(self) -> Path:
        """The stage's own output folder, ``<out>/<stage>``."""
        return self.spec.out / self.name

    def get(self, key: str, default: Any = None) -> Any:
        """A setting, or ``default`` when it is absent or null."""
        value = self.settings.get(key)
        return default if value is None else value


@dataclass(frozen=True)
class StageDef:
    """How the runner runs a stage.

    Attributes:
        run: ``run(ctx, run_id) -> outputs``; ``run_id`` is the stage run the runner made, or None
            when ``own_run`` (then the outputs carry the ``run_id`` the stage created).
        inputs: Files and folders whose content the stage key covers.
        own_run: The stage creates its MLflow run itself (evaluate logs through its own API).
    """

    run: Callable[[StageContext, str | None], Outputs]
    inputs: Callable[[StageContext], list[Path]] = field(default=lambda ctx: [])
    own_run: bool = False
