"""satcnn.checks: one message format per rule, an OptionError that is a ConfigError and a ValueError."""

from __future__ import annotations

import math

import pytest

from satcnn.checks import (
    OptionError,
    require_above,
    require_at_least,
    require_choice,
    require_in_range,
)
from satcnn.errors import ConfigError


@pytest.mark.parametrize(
    ("check", "message"),
    [
        (lambda: require_at_least("count", 0, 1), "count must be >= 1, got 0"),
        (lambda: require_at_least("size", 31, 32, "pixels"), "size must be >= 32 pixels, got 31"),
        (
            lambda: require_at_least("rho", 1.5, 0, "pixels", whole=True),
            "rho must be a whole number >= 0 pixels, got 1.5",
        ),
        (lambda: require_at_least("rho", -1, 0, whole=True), "rho must be >= 0, got -1"),
        (lambda: require_above("width", 0.0, unit="metres"), "width must be > 0 metres, got 0.0"),
        (lambda: require_above("interval", math.nan), "interval must be > 0, got nan"),
        (
            lambda: require_in_range("f", 0.5, 0, 0.5, low_open=True, high_open=True),
            "f must be in (0, 0.5), got 0.5",
        ),
        (lambda: require_in_range("f", 0, 0, 1, low_open=True), "f must be in (0, 1], got 0"),
        (
            lambda: require_in_range("overlap", 64, 0, 64, high_open=True, high_name="patch_size"),
            "overlap must be in [0, patch_size=64), got 64",
        ),
        (lambda: require_in_range("r", 101, 0, 100, unit="metres"), "r must be in [0, 100] metres, got 101"),
        (
            lambda: require_choice("axis", "diag", ("rows", "cols")),
            "axis must be one of rows, cols, got 'diag'",
        ),
    ],
)
def test_each_rule_names_the_option_and_the_value(check, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(OptionError) as err:
        check()
    assert str(err.value) == message and err.value.option == message.split(" ")[0]
    assert isinstance(err.value, ConfigError) and isinstance(err.value, ValueError)


def test_values_inside_the_rule_and_none_pass() -> None:
    require_at_least("count", 1, 1)
    require_at_least("window", None, 1)
    require_at_least("rho", 2.0, 0, whole=True)
    require_above("width", 1e-9)
    require_above("buffer_m", None)
    require_in_range("f", 0.25, 0, 0.5, low_open=True, high_open=True)
    require_in_range("resolution", None, 0, 100, low_open=True)
    require_in_range("i", 0, 0, 3, high_open=True)
    require_choice("axis", "rows", ("rows", "cols"))
