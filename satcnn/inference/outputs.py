"""Outputs of a batch run: their names, the tags that say what made them, and when they are stale.

Names: input ``<dir>/<stem>.<ext>`` writes ``<output_dir>/<stem><suffix>.tif`` for each of the
run's output suffixes (``""``; ``"_mask"`` too for ``output_type="both"``). Before anything is
written, ``check_output_names`` fails naming both inputs when two would write the same file (two
stems alike, or ``a.tif``'s mask taking the name of ``a_mask.tif``'s probability).

Tags and staleness: every output carries ``satcnn.io.output_tags.OutputTags`` (what it is and
which model made it); a rerun keeps an output only when ``is_current`` finds that the tags that
decide its pixels match this run (the output type, the weights digest, the mask threshold or the
class-map stride, the TTA, the bands, the rescale rule and the precision). So a checkpoint
retrained at the same path, or an alias moved to a version with other weights, is recomputed,
and the same weights under another path or URI are not.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from satcnn.errors import ConfigError

__all__ = ["check_output_names", "output_paths"]


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
