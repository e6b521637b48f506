"""The batches of tiles that get one label: the stream (one process) and a plan made from headers
(the Ray engine's) must agree, so that both engines give the model the same batches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from satcnn.errors import RasterError
from satcnn.inference.per_tile import BATCH_PIXELS, TileClassifier, TileRead, plan_batches


def _read(i: int, shape: tuple[int, int, int] | None) -> TileRead:
    if shape is None:
        return TileRead(Path(f"{i}.tif"), None, None, None, 0.0, RasterError("unreadable", f"{i}.tif"))
    return TileRead(Path(f"{i}.tif"), np.zeros(shape, np.float32), np.ones(shape[1:], bool), None, 0.0)


def _streamed(shapes: list[tuple[int, int, int] | None], monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """The batches ``TileClassifier.label`` classifies, as positions."""
    batches: list[list[int]] = []

    def classify(self: Any, reads: list[TileRead]) -> list[dict[str, float]]:
        batches.append([int(r.src.stem) for r in reads])
        return [{"a": 1.0}] * len(reads)

    monkeypatch.setattr(TileClassifier, "classify", classify)
    tiles = TileClassifier.__new__(TileClassifier)
    list(tiles.label(_read(i, s) for i, s in enumerate(shapes)))
    return batches


def test_the_plan_from_headers_is_the_streams_batching(monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = (4, 28, 28), (4, 40, 40)
    full = BATCH_PIXELS // (4 * 28 * 28)  # patches of shape a in one batch
    shapes: list[tuple[int, int, int] | None] = [a, a, b, None, b, b, a, *[a] * (full + 3), None]
    plan = plan_batches(shapes)
    assert plan == _streamed(shapes, monkeypatch)
    assert plan[:4] == [[0, 1], [2], [4, 5], list(range(6, 6 + full))]  # shape, failure, size end a batch
    assert plan[4] == list(range(6 + full, 6 + full + 4))
    assert all(3 not in batch and len(shapes) - 1 not in batch for batch in plan)
