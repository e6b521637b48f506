"""What a raster will cost, said before its first window (window count, output size, free disk) and
after its first windows (:class:`Estimate`: the time left at the rate measured so far).

``stream_raster`` calls :func:`announce` once the plan is made. It logs the count and sizes (a
warning for large inputs, so a 100000 x 100000 raster does not start a 50,000-window run
unannounced) and refuses, with one error naming the output, when the output cannot fit in the
free space of its folder. The writer checks that again when it opens (``AtomicCOGWriter.open``).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from satcnn.io.cog import AtomicCOGWriter, check_free_space, free_bytes, human_bytes

logger = logging.getLogger(__name__)

__all__ = ["ESTIMATE_AFTER_ENV", "LARGE_OUTPUT_BYTES", "LARGE_WINDOWS", "Estimate", "announce", "duration"]

LARGE_WINDOWS = 1000  # at or above this, the announcement is a warning
LARGE_OUTPUT_BYTES = 2**30
ESTIMATE_AFTER_S = 10.0  # the first estimate of the time left, then one every ESTIMATE_EVERY_S
ESTIMATE_EVERY_S = 600.0
ESTIMATE_AFTER_ENV = "SATCNN_ESTIMATE_AFTER_S"  # test hook: seconds before the first estimate


def announce(src: Path, dst: Path, plan: Any, writer: AtomicCOGWriter) -> None:
    """Log ``src``'s window count, output size and free disk; refuse an output that cannot fit.

    Args:
        src: The input raster.
        dst: The output COG.
        plan: The raster's ``WindowPlan`` (its ``batches`` and ``unit_name``).
        writer: The output's writer (its sizes).

    Raises:
        OutputError: The output's folder has less free space than the output may need.
    """
    units = sum(len(b) for b in plan.batches)
    needed = writer.space_needed()
    free = free_bytes(dst.parent)
    large = units >= LARGE_WINDOWS or writer.raw_bytes >= LARGE_OUTPUT_BYTES
    logger.log(
        logging.WARNING if large else logging.INFO,
        "%s: %d %s%s, output %s uncompressed (up to %s of disk while writing), %s free in %s",
        src,
        units,
        {"win": "window"}.get(plan.unit_name, plan.unit_name),
        "" if units == 1 else "s",
        human_bytes(writer.raw_bytes),
        human_bytes(needed),
        "unknown" if free is None else human_bytes(free),
        dst.parent,
    )
    check_free_space(dst, needed)


def duration(seconds: float) -> str:
    """``seconds`` for a person: ``4 h 10 min``, ``12 min``, ``40 s``."""
    minutes = round(seconds / 60)
    if minutes >= 60:
        return f"{minutes // 60} h {minutes % 60} min"
    return f"{minutes} min" if minutes else f"{max(round(seconds), 1)} s"


class Estimate:
    """Logs the time left on a raster at the rate measured so far: once after its first windows
    (``ESTIMATE_AFTER_S``), then every ``ESTIMATE_EVERY_S``, while windows are left.

    Args:
        src: The input raster (named in the line).
        units: Windows (or patches) in the raster.
        megapixels: The raster's size, for the rate in MP/s.
        unit_name: What a unit is called (``window``, ``patch``).
    """

    def __init__(self, src: Path, units: int, megapixels: float, unit_name: str = "window") -> None:
        self.src, self.units, self.megapixels, self.unit_name = src, units, megapixels, unit_name
        self.done = 0
        self.start = time.perf_counter()
        self.next_at = float(os.environ.get(ESTIMATE_AFTER_ENV, ESTIMATE_AFTER_S))

    def update(self, n: int) -> None:
        """Count ``n`` more units done; log the estimate when it is due."""
        self.done += n
        elapsed = time.perf_counter() - self.start
        if elapsed < self.next_at or self.done >= self.units or self.done == 0:
            return
        self.next_at = elapsed + ESTIMATE_EVERY_S
        left = elapsed * (self.units - self.done) / self.done
        rate = self.megapixels * self.done / self.units / max(elapsed, 1e-9)
        logger.info(
            "%s: ~%s left at %.2f MP/s (%d of %d %ss in %s)",
            *(self.src, duration(left), rate, self.done, self.units, self.unit_name, duration(elapsed)),
        )
