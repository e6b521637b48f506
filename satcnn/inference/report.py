"""What a batch run did: one ``TileResult`` per input and the ``InferenceReport`` over them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

__all__ = ["InferenceReport", "TileResult"]


@dataclass
class TileResult:
    """What happened to one input.

    Attributes:
        input: The input raster.
        outputs: Its output files (present when ``status`` is ``done`` or ``skipped``).
        status: ``done``, ``skipped`` (outputs existed), or ``failed``.
        pixels: Input pixels processed (0 unless done).
        seconds: Wall time spent on it.
        error: The problem, for failed inputs (starts with the input path).
        class_fractions: Share of each class (classifiers).
        label: The tile's true class, from its per-class folder (one label per tile).
        probabilities: Per class, the tile's probability (one label per tile).
        warnings: What the run noted about this input (logged once per run for all inputs,
            ``satcnn.io.notes``).
    """

    input: Path
    outputs: list[Path]
    status: Literal["done", "skipped", "failed"]
    pixels: int = 0
    seconds: float = 0.0
    error: str | None = None
    class_fractions: dict[str, float] | None = None
    label: str | None = None
    probabilities: dict[str, float] | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class InferenceReport:
    """Summary of ``run_inference``.

    Attributes:
        model_uri: The model as given.
        model_path: The checkpoint read.
        results: One per input of this shard, in order (inputs after a failure without
            ``keep_going`` are absent).
        seconds: Wall time of the whole run.
        shard: ``(index, count)``.
        manifest: Path of the manifest written.
        class_fractions_csv: Path of the CSV (classifiers), else None.
        mlflow_run_id: The inference's MLflow run, when tracked.
        predictions_csv: The per-tile predictions (classifiers, one label per tile), else None.
        metrics_json: Their metrics against the per-class folders' labels, else None.
        stac_collection: The STAC catalogue of the folder's outputs (``collection.json``), else None.
    """

    model_uri: str
    model_path: Path
    results: list[TileResult] = field(default_factory=list)
    seconds: float = 0.0
    shard: tuple[int, int] = (0, 1)
    manifest: Path | None = None
    class_fractions_csv: Path | None = None
    mlflow_run_id: str | None = None
    predictions_csv: Path | None = None
    metrics_json: Path | None = None
    stac_collection: Path | None = None

    @property
    def done(self) -> list[TileResult]:
        """Inputs computed in this run."""
        return [r for r in self.results if r.status == "done"]

    @property
    def skipped(self) -> list[TileResult]:
        """Inputs whose outputs already existed."""
        return [r for r in self.results if r.status == "skipped"]

    @property
    def failures(self) -> list[TileResult]:
        """Inputs that failed."""
        return [r for r in self.results if r.status == "failed"]

    @property
    def ok(self) -> bool:
        """Whether no input failed."""
        return not self.failures

    @property
    def megapixels(self) -> float:
        """Input megapixels computed in this run."""
        return sum(r.pixels for r in self.done) / 1e6

    @property
    def megapixels_per_s(self) -> float:
        """Computed megapixels per second of the whole run's wall time."""
        return self.megapixels / self.seconds if self.seconds > 0 else 0.0
