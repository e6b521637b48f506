"""One label per tile: the DeepSat use case, a classifier over a folder of patch-sized tiles.

A classifier given a tile of its patch size (``P x P``), or any tile with ``per_tile``, gives
the tile one label instead of a class map: the class probabilities of its ``P x P`` windows at
the class-map stride (one window for a patch-sized tile), averaged over the windows whose pixels
are all valid, and their argmax. Test-time augmentation averages each window's probabilities
first, as for class maps. A tile is read whole, so ``per_tile`` takes tiles of at most
``MAX_SIDE`` pixels a side; larger rasters get class maps.

The run writes ``predictions.csv`` (``predictions.rank<r>.csv`` per shard): one row per tile of
this run, in input order, with the tile path, its true class (``label``, when known), the
predicted class and the probability of every class. When every tile comes from a per-class
folder (``--input root/`` with ``root/<class>/*.tif``; folder names are matched to the model's
classes with ``satcnn.data.class_names.match_class``, so ``roads`` is ``road``), the run also
writes ``metrics.json`` (accuracy, per-class precision, recall, F1 and support, the confusion
matrix) and ``confusion_matrix.png``. All are written atomically.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextvars import copy_context
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from rasterio.errors import RasterioError
from rasterio.windows import Window

from satcnn.data.class_names import match_class
from satcnn.errors import RasterError, SatcnnError
from satcnn.inference.device import autocast
from satcnn.inference.input_rule import InputRule
from satcnn.inference.report import TileResult
from satcnn.inference.stream_input import check_crs
from satcnn.inference.tta import tta_mean
from satcnn.io.atomic import atomic_output, write_text_atomic
from satcnn.io.inputs import RASTER_SUFFIXES
from satcnn.io.raster import RasterInfo, open_raster, opened_raster
from satcnn.io.reader import WindowReader

logger = logging.getLogger(__name__)

__all__ = ["MAX_SIDE", "TileClassifier", "TileRead", "folder_labels", "write_per_tile_records"]

MAX_SIDE = 2048
READERS = 2
"""Threads reading tiles ahead of the model."""
BATCH_PIXELS = 1 << 20
"""Input values (bands x pixels) of one model pass over tiles of one shape: 334 SAT-6 patches."""
MAX_AHEAD = 1024
"""Most tiles read ahead of the model."""


def _key(path: Path) -> str:
    return os.path.abspath(path)  # as resolve_inputs deduplicates: symlinked copies stay distinct


def folder_labels(specs: Sequence[str | Path], classes: Sequence[str]) -> dict[str, str]:
    """True classes of the tiles in per-class folders: ``{absolute tile path: class}``.

    A spec that is a folder holding sub-folders gives each sub-folder's rasters the class its
    name matches (``match_class``); a sub-folder that matches no class is reported once and its
    tiles stay unlabelled.
    """
    labels: dict[str, str] = {}
    for spec in specs:
        root = Path(spec).expanduser()
        if not root.is_dir():
            continue
        for sub in sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")):
            cls = match_class(sub.name, classes)
            if cls is None:
                logger.warning(
                    "%s: folder name matches none of the classes %s; no labels", sub, list(classes)
                )
                continue
            for tile in sub.iterdir():
                if tile.suffix.lower() in RASTER_SUFFIXES and not tile.name.startswith("."):
                    labels[_key(tile)] = cls
    return labels


@dataclass
class TileRead:
    """One tile read whole for a label, or the problem that stopped it.

    Attributes:
        src: The tile.
        data: ``(bands, rows, cols)`` model input (``None`` after an error).
        valid: ``(rows, cols)``, True where the pixel is valid.
        info: Its header.
        seconds: Time spent checking and reading it.
        error: Why it cannot be used (names the tile).
    """

    src: Path
    data: np.ndarray | None
    valid: np.ndarray | None
    info: RasterInfo | None
    seconds: float
    error: SatcnnError | None = None


class TileClassifier:
    """Classify whole tiles: mean window probabilities (see the module docstring).

    Args:
        scorer: Dense scorer ``(1, C, H, W) -> (1, K, (H - P) // S + 1, (W - P) // S + 1)``
            (``jobs._scorer``), on ``device``.
        classes: The ``K`` class names.
        patch_size: ``P``.
        stride: ``S``.
        bands: Bands the model consumes.
        dtypes: Allowed input data types (``None``: any).
        device: Where the scorer runs.
        precision: As ``InferenceOptions.precision``.
        tta: ``none``, ``flip`` or ``d4``.
        require_crs: Refuse tiles without a CRS (``allow_no_crs`` off).
        rule: The model's input rule (band selection, checks, radiometry), as the engine's
            ``StreamSettings.inputs``; when set it replaces the ``bands`` and ``dtypes`` checks.
    """

    def __init__(
        self,
        scorer: torch.nn.Module,
        classes: Sequence[str],
        patch_size: int,
        stride: int,
        bands: int,
        dtypes: Sequence[str] | None,
        device: torch.device,
        precision: str = "32",
        tta: str = "none",
        require_crs: bool = True,
        rule: InputRule | None = None,
    ) -> None:
        self.scorer = scorer.to(device).eval()
        self.classes = list(classes)
        self.patch_size, self.stride, self.bands, self.dtypes = patch_size, stride, bands, dtypes
        self.device, self.precision, self.tta, self.require_crs = device, precision, tta, require_crs
        self.rule = rule

    def _checks(self) -> dict[str, Any]:
        checks = self.rule is None  # else the input rule checks bands and type
        return {
            "bands": self.bands if checks else None,
            "dtypes": self.dtypes if checks else None,
            "min_size": self.patch_size,
            "require_crs": False,
        }

    def _check(self, info: RasterInfo) -> None:
        check_crs(info, self.require_crs)
        if max(info.height, info.width) > MAX_SIDE:
            raise RasterError(
                f"raster is {info.height} x {info.width} pixels; one label per tile reads a tile whole, "
                f"at most {MAX_SIDE} pixels a side: run without --per-tile to get a class map",
                info.path,
            )

    def open(self, src: Path) -> RasterInfo:
        """Check ``src`` as an input of this classifier (bands, dtype, size, CRS) and return its header."""
        info = open_raster(src, **self._checks())
        self._check(info)
        return info

    def read(self, src: Path) -> TileRead:
        """Check and read ``src`` whole; a problem with it is returned, not raised (it names the tile)."""
        t = time.perf_counter()
        try:
            try:
                with opened_raster(src, **self._checks()) as (ds, info):
                    self._check(info)
                    reader = WindowReader(ds, self.bands) if self.rule is None else self.rule.reader(ds, src)
                    data, valid = reader.read(Window(0, 0, info.width, info.height))  # type: ignore[call-arg]
            except RasterioError as err:
                raise RasterError(f"cannot read or write: {err}", src) from err
        except SatcnnError as err:
            return TileRead(src, None, None, None, time.perf_counter() - t, err)
        return TileRead(src, data, valid, info, time.perf_counter() - t)

    def classify(self, reads: Sequence[TileRead]) -> list[dict[str, float] | RasterError]:
        """Per tile, its class probabilities (mean over its valid windows), or why it has none.

        Args:
            reads: Tiles read without error, all of one shape: one model pass over them.
        """
        P, S = self.patch_size, self.stride
        x = torch.from_numpy(np.stack([r.data for r in reads])).to(self.device)  # type: ignore[misc]
        with torch.inference_mode(), autocast(self.device, self.precision):
            probs = tta_mean(lambda z: self.scorer(z).float().softmax(1), x, self.tta).float().cpu()
        invalid = torch.from_numpy(~np.stack([r.valid for r in reads]))[:, None]  # type: ignore[misc]
        bad = F.max_pool2d(invalid.float(), kernel_size=P, stride=S)[:, 0]
        out: list[dict[str, float] | RasterError] = []
        for r, p, b in zip(reads, probs, bad, strict=True):
            keep = b == 0
            if not bool(keep.any()):
                msg = f"no {P} x {P} window of the tile is free of nodata; it has no label"
                out.append(RasterError(msg, r.src))
                continue
            mean = p[:, keep].mean(dim=1).numpy()
            out.append({c: float(v) for c, v in zip(self.classes, mean, strict=True)})
        return out

    def probabilities(self, src: Path) -> tuple[dict[str, float], RasterInfo]:
        """The tile's class probabilities (mean over its valid windows) and its header.

        Raises:
            RasterError: The tile cannot be used, or none of its windows is wholly valid.
        """
        read = self.read(src)
        if read.error is not None:
            raise read.error
        (result,) = self.classify([read])
        if isinstance(result, RasterError):
            raise result
        assert read.info is not None
        return result, read.info

    def stream(
        self, srcs: Sequence[Path], readers: int = READERS
    ) -> Iterator[tuple[TileRead, dict[str, float] | SatcnnError]]:
        """Each tile of ``srcs``, in order, with its probabilities or its problem.

        ``readers`` threads read the tiles ahead (GDAL releases the GIL while it reads); tiles of
        one shape are classified in batches of up to ``BATCH_PIXELS`` input pixels. A tile that
        cannot be used is reported alone and leaves the others of its batch as they are.
        """
        ahead: deque[Future[TileRead]] = deque()
        todo = iter(srcs)
        limit = 2 * readers
        batch: list[TileRead] = []
        with ThreadPoolExecutor(readers, thread_name_prefix="satcnn-tiles") as pool:
            try:
                while True:
                    while len(ahead) < limit and (src := next(todo, None)) is not None:
                        ahead.append(pool.submit(copy_context().run, self.read, src))
                    read = ahead.popleft().result() if ahead else None
                    if batch and (read is None or read.error is not None or _full(batch, read)):
                        yield from zip(batch, self.classify(batch), strict=True)
                        batch = []
                    if read is None:
                        return
                    if read.error is not None:
                        yield read, read.error
                        continue
                    batch.append(read)
                    pixels = read.data.size if read.data is not None else 1
                    limit = max(2 * readers, min(MAX_AHEAD, BATCH_PIXELS // max(pixels, 1)))
            finally:
                for f in ahead:
                    f.cancel()


def _full(batch: list[TileRead], read: TileRead) -> bool:
    """Whether ``read`` starts a new batch: another shape, or the batch holds enough pixels."""
    assert read.data is not None and batch[0].data is not None
    return read.data.shape != batch[0].data.shape or (len(batch) + 1) * read.data.size > BATCH_PIXELS


def _predicted(r: TileResult) -> str:
    assert r.probabilities is not None
    return max(r.probabilities, key=r.probabilities.__getitem__)


def _write_predictions(path: Path, classes: list[str], rows: list[TileResult], labelled: bool) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["tile", *(["label"] if labelled else []), "predicted", *classes])
    for r in rows:
        assert r.probabilities is not None
        label = [r.label or ""] if labelled else []
        writer.writerow(
            [str(r.input), *label, _predicted(r), *(f"{r.probabilities[c]:.6f}" for c in classes)]
        )
    write_text_atomic(path, buf.getvalue())


def tile_metrics(classes: list[str], labels: Sequence[str], predicted: Sequence[str]) -> dict[str, Any]:
    """Accuracy, per-class precision, recall, F1 and support, and the confusion matrix (true by row).

    Computed from the confusion matrix by hand: importing torchmetrics (torchvision, dynamo) takes
    longer than a whole run over a patch folder. A ratio with a zero denominator is 0, as in
    torchmetrics and scikit-learn's ``zero_division=0``.
    """
    index = {c: i for i, c in enumerate(classes)}
    k = len(classes)
    target = np.array([index[c] for c in labels], np.int64)
    preds = np.array([index[c] for c in predicted], np.int64)
    matrix = np.bincount(target * k + preds, minlength=k * k).reshape(k, k)
    hits = np.diag(matrix).astype(np.float64)
    support, claimed = matrix.sum(axis=1), matrix.sum(axis=0)
    precision = np.divide(hits, claimed, out=np.zeros(k), where=claimed > 0)
    recall = np.divide(hits, support, out=np.zeros(k), where=support > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros(k), where=both > 0)
    return {
        "tiles": len(target),
        "accuracy": float(hits.sum() / max(len(target), 1)),
        "per_class": {
            c: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, c in enumerate(classes)
        },
        "classes": classes,
        "confusion_matrix": matrix.tolist(),
    }


def _write_figure(path: Path, matrix: list[list[int]], classes: list[str]) -> None:
    from satcnn.tasks.figures import close, confusion_matrix_figure

    fig = confusion_matrix_figure(np.asarray(matrix), classes, title="Per-tile confusion matrix")
    try:
        with atomic_output(path) as tmp:
            fig.savefig(tmp, dpi=100)
    finally:
        close(fig)


def write_per_tile_records(
    out_dir: Path, shard: tuple[int, int], classes: list[str], results: list[TileResult]
) -> tuple[Path | None, Path | None]:
    """Write ``predictions.csv`` and, for fully labelled tiles, ``metrics.json`` and the figure.

    Returns:
        The predictions and metrics paths (``None`` where not written).
    """
    rows = [r for r in results if r.status == "done" and r.probabilities is not None]
    if not rows:
        return None, None
    suffix = f".rank{shard[0]}" if shard[1] > 1 else ""
    labelled = all(r.label is not None for r in rows)
    predictions = out_dir / f"predictions{suffix}.csv"
    _write_predictions(predictions, classes, rows, labelled or any(r.label for r in rows))
    if not labelled:
        return predictions, None
    metrics = tile_metrics(classes, [str(r.label) for r in rows], [_predicted(r) for r in rows])
    metrics_path = out_dir / f"metrics{suffix}.json"
    write_text_atomic(metrics_path, json.dumps(metrics, indent=2) + "\n")
    _write_figure(out_dir / f"confusion_matrix{suffix}.png", metrics["confusion_matrix"], classes)
    logger.info("per-tile accuracy %.4f over %d tiles", metrics["accuracy"], metrics["tiles"])
    return predictions, metrics_path
