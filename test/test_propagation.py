"""Masks and probabilities carried along the flow: exact shifts under a uniform flow."""

from __future__ import annotations

import numpy as np

from amp_ros.propagation import carry_mask, carry_probability


def test_carry_mask_follows_the_flow() -> None:
    """A uniform flow of (+2, +1) px moves the mask by exactly that; pixels leaving the frame
    stop at its border."""
    mask = np.zeros((10, 12), bool)
    mask[2:5, 3:7] = True
    flow = np.zeros((10, 12, 2), np.float32)
    flow[..., 0], flow[..., 1] = 2.0, 1.0
    expected = np.zeros((10, 12), bool)
    expected[3:6, 5:9] = True
    assert np.array_equal(carry_mask(mask, flow), expected)
    flow[..., 0] = 20.0
    assert carry_mask(mask, flow)[:, 11].sum() == 3 and carry_mask(mask, flow)[:, :11].sum() == 0


def test_carry_probability_follows_the_flow() -> None:
    """A uniform flow of (+2, +1) px moves the map by exactly that; where the flow points back
    outside the frame, the nearest border value is read."""
    probability = np.arange(10 * 12, dtype=np.float32).reshape(10, 12) / 120
    flow = np.zeros((10, 12, 2), np.float32)
    flow[..., 0], flow[..., 1] = 2.0, 1.0
    carried = carry_probability(probability, flow)
    np.testing.assert_array_equal(carried[1:, 2:], probability[:-1, :-2])
    np.testing.assert_array_equal(carried[0, 2:], probability[0, :-2])
    np.testing.assert_array_equal(carried[1:, 0], probability[:-1, 0])
