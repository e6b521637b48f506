"""The one road rule (``p >= t``, ``t`` in [0, 1]): its check, and the same mask from a float
probability and from its uint8 encoding."""

from __future__ import annotations

import math

import numpy as np
import pytest

from satcnn.errors import ConfigError
from satcnn.io.road_mask import (
    UINT8_SCALE,
    RoadEncoding,
    check_threshold,
    min_road_value,
    road_mask,
)

UINT8 = RoadEncoding("probability", 1 / UINT8_SCALE)


def test_one_range_and_one_message() -> None:
    for ok in (0.0, 0.5, 1.0):
        assert check_threshold("threshold", ok) == ok
    for bad in (-0.1, 1.5, math.nan):
        with pytest.raises(ConfigError, match=rf"^threshold must be in \[0, 1\], got {bad}$"):
            check_threshold("threshold", bad)


def test_a_probability_equal_to_the_threshold_is_road() -> None:
    prob = np.array([0.25, 0.4999, 0.5, 0.7, 1.0, np.nan], np.float32)
    np.testing.assert_array_equal(road_mask(prob, 0.5), [False, False, True, True, True, False])
    # compared at the raster's precision: a float32 pixel written as 0.7 is at 0.7
    assert road_mask(np.array([0.7], np.float32), 0.7).all()
    assert road_mask(prob[:5], 0.0).all() and road_mask(prob[:5], 1.0).tolist() == [False] * 4 + [True]


def test_uint8_values_are_thresholded_exactly() -> None:
    assert [min_road_value(t, 1 / 254) for t in (0.0, 0.3, 0.5, 1.0)] == [0, 77, 127, 254]
    values = np.arange(255, dtype=np.uint8)
    np.testing.assert_array_equal(UINT8.road(values, 0.5), values >= 127)
    # a float32 copy of the values (how evaluate reads them) gives the same mask
    np.testing.assert_array_equal(UINT8.road(values.astype(np.float32), 0.5), values >= 127)


@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 0.77, 1.0])
def test_float_and_uint8_masks_agree_but_within_half_a_quantum_of_the_threshold(threshold: float) -> None:
    prob = np.concatenate([np.linspace(0, 1, 20001), np.arange(255) / 254]).astype(np.float32)
    encoded = np.rint(np.clip(prob, 0, 1) * UINT8_SCALE).astype(np.uint8)  # prob_uint8
    differ = road_mask(prob, threshold) != UINT8.road(encoded, threshold)
    assert np.all(np.abs(prob[differ] - threshold) <= 0.5 / UINT8_SCALE + 1e-7)
    # probabilities that are multiples of 1/254 (0, 0.5, 1 among them) never differ
    on_grid = np.arange(255) / 254
    np.testing.assert_array_equal(
        road_mask(on_grid.astype(np.float32), threshold), UINT8.road(np.arange(255), threshold)
    )


def test_masks_are_non_zero_whatever_the_threshold() -> None:
    mask = RoadEncoding("mask")
    for threshold in (0.0, 0.5, 1.0):
        np.testing.assert_array_equal(mask.road(np.array([0, 1, 255]), threshold), [False, True, True])
