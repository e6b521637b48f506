"""Outputs of a batch run: their names, the tags that say what made them, and when they are stale.

Names: input ``<dir>/<stem>.<ext>`` writes ``<output_dir>/<stem><suffix>.tif`` for each of the
run's output suffixes (``""``; ``"_mask"`` too for ``output_type="both"``). Before anything is
written, ``check_output_names`` fails naming both inputs when two would write the same file (two
stems alike, or ``a.tif``'s mask taking the name of ``a_mask.tif``'s probability).

Staleness by content: every output carries ``SATCNN_MODEL_DIGEST``, a SHA-256 of the model's
weights (``weights_digest``), beside the model URI as given (``SATCNN_MODEL``, informative) and,
for registered models, ``SATCNN_MODEL_VERSION`` (``<name>/<version>``). A rerun keeps an output
only when the tags that decide its pixels match this run: the output type, the weights digest,
the mask threshold or the class-map stride, and the precision the model ran at
(``SATCNN_PRECISION``: a ``bf16-mixed`` output is not a ``32`` one). So a checkpoint retrained
at the same path, or an alias moved to a version with other weights, is recomputed, and the same
weights under another path or URI are not.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import rasterio
from rasterio.errors import RasterioError

from satcnn.errors import ConfigError

logger = logging.getLogger(__name__)

__all__ = [
    "MODEL_DIGEST_TAG",
    "PRECISION_TAG",
    "TagValue",
    "check_output_names",
    "is_current",
    "output_paths",
    "stale_reason",
]

MODEL_DIGEST_TAG = "SATCNN_MODEL_DIGEST"
PRECISION_TAG = "SATCNN_PRECISION"
TagValue = str | int | float


def output_paths(src: Path, out_dir: Path, suffixes: Sequence[str]) -> list[Path]:
    """The outputs of input ``src``: ``<out_dir>/<stem><suffix>.tif`` per suffix.

    A suffix with its own extension (``_roads.gpkg``) names the whole end of the file name.
    """
    return [out_dir / f"{src.stem}{s}{'' if Path(s).suffix else '.tif'}" for s in suffixes]


def check_output_names(
    inputs: Sequence[Path], out_dir: Path, suffixes: Sequence[str], roles: Sequence[str]
) -> None:
    """Fail before any output is written when two inputs would write the same file.

    Args:
        inputs: Every input of the run (all shards: they share the output folder).
        out_dir: The output folder.
        suffixes: The run's output suffixes.
        roles: What each suffix's output is (e.g. ``probability``, ``mask``), for the message.

    Raises:
        ConfigError: Naming the file both inputs would write, and both inputs.
    """
    owners: dict[Path, tuple[Path, str]] = {}
    for src in inputs:
        for path, role in zip(output_paths(src, out_dir, suffixes), roles, strict=True):
            if path not in owners:
                owners[path] = (src, role)
                continue
            other, other_role = owners[path]
            what = (
                f" (the {other_role} of {other.name} and the {role} of {src.name})" if len(roles) > 1 else ""
            )
            raise ConfigError(f"would be written by both inputs {other} and {src}{what}; rename one", path)


def stale_reason(path: Path, expected: Mapping[str, TagValue]) -> str | None:
    """Why the existing output ``path`` does not answer the request ``expected`` (its tags), or None.

    An output that expects no tags (vectors derived from a raster output) answers any request.
    """
    if not expected:
        return None
    try:
        with rasterio.open(path) as ds:
            tags = ds.tags()
    except RasterioError as err:
        return f"{path} is unreadable ({err})"
    for key, want in expected.items():
        have = tags.get(key)
        if isinstance(want, int | float) and not isinstance(want, bool):
            try:
                same = have is not None and float(have) == float(want)
            except ValueError:
                same = False
        else:
            same = have == str(want)
        if not same:
            return f"{path} has {key}={have!r}, this run asks for {want!r}"
    return None


def is_current(outs: Sequence[Path], expected: Sequence[Mapping[str, TagValue]]) -> bool:
    """Whether every output exists and answers this run's request (a rerun may keep them)."""
    if not all(o.exists() for o in outs):
        return False
    reason = next((r for o, e in zip(outs, expected, strict=True) if (r := stale_reason(o, e))), None)
    if reason:
        logger.info("recomputing: %s", reason)
    return reason is None
