"""Match a folder name to a model's class names: ``roads`` is ``road``, ``barren`` is ``barren_land``.

Per-class folders name their class as people write it: plural or singular, another case,
spaces or dashes, a short or a long form. ``match_class`` compares canonical forms: lower case,
runs of other characters than letters and digits as one ``_``, a trailing plural ``s`` dropped,
then the alias groups below (each group's names are one class).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["ALIASES", "canonical_class", "match_class"]

# Names of one land-cover class in DeepSat (SAT-4/SAT-6), their folders, and common variants.
ALIASES: tuple[tuple[str, ...], ...] = (
    ("barren_land", "barren", "bare", "bare_soil", "bare_land"),
    ("tree", "forest", "woodland"),
    ("grassland", "grass", "pasture"),
    ("building", "built_up", "urban"),
    ("road", "street"),
    ("water", "water_body"),
    ("other", "none"),
)
_GROUP = {name: group[0] for group in ALIASES for name in group}


def _plain(name: str) -> str:
    out = re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")
    return out[:-1] if len(out) > 3 and out.endswith("s") and not out.endswith("ss") else out


def canonical_class(name: str) -> str:
    """The canonical form of a class or folder name (see the module docstring)."""
    plain = _plain(name)
    return _GROUP.get(plain, plain)


def match_class(name: str, classes: Sequence[str]) -> str | None:
    """The class of ``classes`` that folder ``name`` stands for, or ``None``.

    Examples:
        >>> match_class("roads", ["building", "road"])
        'road'
        >>> match_class("Barren-Land", ["barren", "trees"])
        'barren'
    """
    key = canonical_class(name)
    hits = [c for c in classes if canonical_class(c) == key]
    return hits[0] if len(hits) == 1 else None
