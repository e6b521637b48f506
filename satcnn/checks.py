"""Value checks of options and arguments: one rule each, one message format, usable from any layer.

Each ``require_*`` raises ``OptionError`` naming the option, with a problem of the form
``must be <rule>, got <value>`` (for example ``window must be >= 1, got 0``). ``OptionError`` is a
``ConfigError`` (and so a ``ValueError``): the command line reports it as one line naming the flag
(``satcnn.flags``), a library caller can catch either.

The road threshold has its own rule and is not checked here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from satcnn.errors import ConfigError

__all__ = [
    "OptionError",
    "require_above",
    "require_at_least",
    "require_choice",
    "require_in_range",
]


class OptionError(ConfigError):
    """An option has an invalid value.

    Attributes:
        option: The option's name (an options dataclass field or a function argument).
        problem: What is wrong with the value, e.g. ``must be >= 1, got 0``.
    """

    def __init__(self, option: str, problem: str) -> None:
        self.option = option
        self.problem = problem
        super().__init__(f"{option} {problem}")


def _with_unit(bound: str, unit: str) -> str:
    return f"{bound} {unit}" if unit else bound


def require_at_least(
    option: str, value: float | None, low: float, unit: str = "", *, whole: bool = False
) -> None:
    """Raise ``OptionError`` unless ``value`` is ``None`` or ``>= low`` (``unit`` follows the bound).

    With ``whole``, ``value`` must also be a whole number (``1.0`` is, ``1.5`` is not).
    """
    if value is None:
        return
    if whole and not (math.isfinite(value) and int(value) == value):
        raise OptionError(option, f"must be a whole number {_with_unit(f'>= {low}', unit)}, got {value}")
    if not value >= low:
        raise OptionError(option, f"must be {_with_unit(f'>= {low}', unit)}, got {value}")


def require_above(option: str, value: float | None, low: float = 0.0, unit: str = "") -> None:
    """Raise ``OptionError`` unless ``value`` is ``None`` or ``> low`` (``> 0`` by default)."""
    if value is not None and not value > low:
        raise OptionError(option, f"must be {_with_unit(f'> {low:g}', unit)}, got {value}")


def require_in_range(
    option: str,
    value: float | None,
    low: float,
    high: float,
    *,
    low_open: bool = False,
    high_open: bool = False,
    unit: str = "",
    high_name: str = "",
) -> None:
    """Raise ``OptionError`` unless ``value`` is ``None`` or lies between ``low`` and ``high``.

    Args:
        option: The option's name.
        value: The value to check (``None`` passes: the option's default applies).
        low: Lower end, included unless ``low_open``.
        high: Upper end, included unless ``high_open``.
        low_open: Exclude ``low``.
        high_open: Exclude ``high``.
        unit: Written after the interval, e.g. ``metres``.
        high_name: Names the upper end in the message, e.g. ``patch_size`` gives ``[0, patch_size=64)``.
    """
    if value is None:
        return
    above = value > low if low_open else value >= low
    below = value < high if high_open else value <= high
    if not (above and below):  # NaN fails both
        upper = f"{high_name}={high:g}" if high_name else f"{high:g}"
        interval = f"{'(' if low_open else '['}{low:g}, {upper}{')' if high_open else ']'}"
        raise OptionError(option, f"must be in {_with_unit(interval, unit)}, got {value}")


def require_choice(option: str, value: object, choices: Sequence[object]) -> None:
    """Raise ``OptionError`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise OptionError(option, f"must be one of {', '.join(map(str, choices))}, got {value!r}")
