"""The result of one ``satcnn evaluate roads|classes`` run: overall metrics, per-tile rows, files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["EvaluationResult"]


@dataclass
class EvaluationResult:
    """What an evaluation computed and wrote.

    Attributes:
        metrics: Overall metrics (pooled over all tiles), name to value.
        per_tile: One row per (prediction, truth) pair: ``prediction``, ``truth`` and that tile's metrics.
        files: Files written in the output folder (JSON, CSV, PNG figures).
        kind: ``"roads"`` or ``"classes"``.
    """

    metrics: dict[str, float]
    per_tile: list[dict[str, Any]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    kind: str = "roads"
