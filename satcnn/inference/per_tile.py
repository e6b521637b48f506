"""One label per tile: the DeepSat use case, a classifier over a folder of patch-sized tiles.

A classifier given a tile of its patch size (``P x P``), or any tile with ``per_tile``, gives
the tile one label instead of a class map: the class probabilities of its ``P x P`` windows at
the class-map stride (one window for a patch-sized tile), averaged over the windows whose pixels
are all valid, and their argmax. Test-time augmentation averages each window's probabilities
first, as for class maps. A tile is read whole, so ``per_tile`` takes tiles of at most
``MAX_SIDE`` pixels a side; larger rasters get class maps.

``TileReader`` checks and reads tiles (it holds no model, so it can be sent to processes that
only read); ``TileClassifier`` runs the model over batches of tiles of one shape, which
``starts_batch`` delimits the same way for a stream of reads and for a plan made from headers
(the Ray engine's). The records a run writes are in ``satcnn.inference.per_tile_records``.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
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

from satcnn.errors import RasterError, SatcnnError
from satcnn.inference.device import autocast
from satcnn.inference.input_rule import InputRule
from satcnn.inference.stream_input import check_crs
from satcnn.inference.tta import tta_mean
from satcnn.io.raster import RasterInfo, open_raster, opened_raster
from satcnn.io.reader import WindowReader

logger = logging.getLogger(__name__)

__all__ = [
    "MAX_SIDE",
    "TileClassifier",
    "TileRead",
    "TileReader",
    "plan_batches",
    "read_ahead",
    "starts_batch",
]

MAX_SIDE = 2048
READERS = 2
"""Threads reading tiles ahead of the model."""
BATCH_PIXELS = 1 << 20
"""Input values (bands x pixels) of one model pass over tiles of one shape: 334 SAT-6 patches."""
MAX_AHEAD = 1024
"""Most tiles read ahead of the model."""


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


def starts_batch(first: tuple[int, ...], count: int, shape: tuple[int, ...]) -> bool:
    """Whether a tile of ``shape`` starts a new batch after ``count`` tiles of shape ``first``:
    another shape, or the batch would hold more than ``BATCH_PIXELS`` input values."""
    return shape != first or (count + 1) * int(np.prod(shape)) > BATCH_PIXELS


def plan_batches(shapes: Sequence[tuple[int, ...] | None]) -> list[list[int]]:
    """The batches (positions in ``shapes``) that ``TileClassifier.stream`` makes of tiles of
    these input shapes; ``None`` is a tile that fails, which ends the batch before it."""
    batches: list[list[int]] = []
    current: list[int] = []
    for i, shape in enumerate(shapes):
        if current and (shape is None or starts_batch(shapes[current[0]], len(current), shape)):  # type: ignore[arg-type]
            batches.append(current)
            current = []
        if shape is not None:
            current.append(i)
    return [*batches, current] if current else batches


@dataclass(frozen=True)
class TileReader:
    """Check and read whole tiles for a classifier (no model: it can go to processes that only read).

    Attributes:
        patch_size: ``P``: the smallest side a tile may have.
        bands: Bands the model consumes.
        dtypes: Allowed input data types (``None``: any).
        require_crs: Refuse tiles without a CRS (``allow_no_crs`` off).
        rule: The model's input rule (band selection, checks, radiometry), as the engine's
            ``StreamSettings.inputs``; when set it replaces the ``bands`` and ``dtypes`` checks.
    """

    patch_size: int
    bands: int
    dtypes: tuple[str, ...] | None = None
    require_crs: bool = True
    rule: InputRule | None = None

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
        """Check ``src``'s header as an input of this classifier (bands, dtype, size, CRS)."""
        info = open_raster(src, **self._checks())
        self._check(info)
        return info

    def check(self, src: Path) -> tuple[RasterInfo, tuple[int, int, int]]:
        """Every check that ``read`` makes but reading the pixels; the header, and the shape of
        the data ``read`` gives.

        Raises:
            SatcnnError: ``src`` cannot be used (names it).
        """
        try:
            with opened_raster(src, **self._checks()) as (ds, info):
                self._check(info)
                reader = WindowReader(ds, self.bands) if self.rule is None else self.rule.reader(ds, src)
                return info, (len(reader.indexes), info.height, info.width)
        except RasterioError as err:
            raise RasterError(f"cannot read or write: {err}", src) from err

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


Outcome = dict[str, float] | SatcnnError


class TileClassifier:
    """Classify whole tiles: mean window probabilities (see the module docstring).

    Args:
        scorer: Dense scorer ``(1, C, H, W) -> (1, K, (H - P) // S + 1, (W - P) // S + 1)``
            (``classification_tiles._scorer``), on ``device``.
        classes: The ``K`` class names.
        reader: Checks and reads the tiles.
        stride: ``S``.
        device: Where the scorer runs.
        precision: As ``InferenceOptions.precision``.
        tta: ``none``, ``flip`` or ``d4``.
    """

    def __init__(
        self,
        scorer: torch.nn.Module,
        classes: Sequence[str],
        reader: TileReader,
        stride: int,
        device: torch.device,
        precision: str = "32",
        tta: str = "none",
    ) -> None:
        self.scorer = scorer.to(device).eval()
        self.classes = list(classes)
        self.reader, self.stride = reader, stride
        self.device, self.precision, self.tta = device, precision, tta

    def classify(self, reads: Sequence[TileRead]) -> list[dict[str, float] | RasterError]:
        """Per tile, its class probabilities (mean over its valid windows), or why it has none.

        Args:
            reads: Tiles read without error, all of one shape: one model pass over them.
        """
        P, S = self.reader.patch_size, self.stride
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
        read = self.reader.read(src)
        if read.error is not None:
            raise read.error
        (result,) = self.classify([read])
        if isinstance(result, RasterError):
            raise result
        assert read.info is not None
        return result, read.info

    def label(self, reads: Iterable[TileRead]) -> Iterator[tuple[TileRead, Outcome]]:
        """Each of ``reads``, in order, with its probabilities or its problem.

        Tiles of one shape are classified in batches (``starts_batch``); a tile that cannot be
        used is reported alone and ends the batch before it.
        """
        batch: list[TileRead] = []
        for read in reads:
            if batch and (read.data is None or _starts(batch, read)):
                yield from zip(batch, self.classify(batch), strict=True)
                batch = []
            if read.error is not None:
                yield read, read.error
                continue
            batch.append(read)
        if batch:
            yield from zip(batch, self.classify(batch), strict=True)

    def stream(self, srcs: Sequence[Path], readers: int = READERS) -> Iterator[tuple[TileRead, Outcome]]:
        """Each tile of ``srcs``, in order, with its probabilities or its problem (see ``label``).

        ``readers`` threads read the tiles ahead (GDAL releases the GIL while it reads).
        """
        return self.label(read_ahead(self.reader, srcs, readers))


def read_ahead(reader: TileReader, srcs: Sequence[Path], readers: int = READERS) -> Iterator[TileRead]:
    """The reads of ``srcs`` in order, by ``readers`` threads working ahead (by up to one batch)."""
    ahead: deque[Future[TileRead]] = deque()
    todo = iter(srcs)
    limit = 2 * readers
    with ThreadPoolExecutor(readers, thread_name_prefix="satcnn-tiles") as pool:
        try:
            while True:
                while len(ahead) < limit and (src := next(todo, None)) is not None:
                    ahead.append(pool.submit(copy_context().run, reader.read, src))
                if not ahead:
                    return
                read = ahead.popleft().result()
                pixels = read.data.size if read.data is not None else 1
                limit = max(2 * readers, min(MAX_AHEAD, BATCH_PIXELS // max(pixels, 1)))
                yield read
        finally:
            for f in ahead:
                f.cancel()


def _starts(batch: list[TileRead], read: TileRead) -> bool:
    assert read.data is not None and batch[0].data is not None
    return starts_batch(batch[0].data.shape, len(batch), read.data.shape)
