"""What a raster will cost, said before its first window: window count, output size, free disk.

``stream_raster`` calls :func:`announce` once the plan is made. It logs the count and sizes (a
warning for large inputs, so a 100000 x 100000 raster does not start a 50,000-window run
unannounced) and refuses, with one error naming the output, when the output cannot fit in the
free space of its folder. The writer checks that again when it opens (``AtomicCOGWriter.open``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from satcnn.io.cog import AtomicCOGWriter, check_free_space, free_bytes, human_bytes

logger = logging.getLogger(__name__)

__all__ = ["LARGE_OUTPUT_BYTES", "LARGE_WINDOWS", "announce"]

LARGE_WINDOWS = 1000  # at or above this, the announcement is a warning
LARGE_OUTPUT_BYTES = 2**30


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
