"""Optical flow: Middlebury colour rendering, resizing, DIS flow and validation."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from amp_ros.errors import InputError
from amp_ros.flow import check_flow, compute_dis_flow, flow_to_rgb, resize_flow


def _uniform(dx: float, dy: float, height: int = 2, width: int = 3) -> np.ndarray:
    flow = np.zeros((height, width, 2), np.float32)
    flow[..., 0], flow[..., 1] = dx, dy
    return flow


def test_zero_flow_is_white() -> None:
    """No motion anywhere renders white (no division by a zero maximum)."""
    rgb = flow_to_rgb(np.zeros((4, 5, 2), np.float32))
    assert rgb.dtype == np.uint8 and rgb.shape == (4, 5, 3)
    assert (rgb == 255).all()


@pytest.mark.parametrize(
    ("dx", "dy", "colour"),
    [
        # Colour-wheel entry 0 of 55 (RY segment start): pure red.
        (1.0, 0.0, (255, 0, 0)),
        # Angle 180°: entry 27 (CB segment, step 2 of 11): G = 255 − ⌊255·2/11⌋ = 209.
        (-1.0, 0.0, (0, 209, 255)),
        # Downwards (image y): entry 13.5, between G = ⌊255·13/15⌋ = 221 and ⌊255·14/15⌋ = 238.
        (0.0, 1.0, (255, 229, 0)),
    ],
)
def test_middlebury_colours(dx: float, dy: float, colour: tuple[int, int, int]) -> None:
    """Full-magnitude flow in a pure direction gets the hand-computed colour-wheel value."""
    assert (flow_to_rgb(_uniform(dx, dy)) == colour).all()


def test_normalised_by_the_largest_displacement() -> None:
    """A rightward vector at half the frame maximum is half-saturated red: (255, 127, 127)."""
    flow = np.zeros((1, 2, 2), np.float32)
    flow[0, 0] = (1.0, 0.0)
    flow[0, 1] = (2.0, 0.0)
    rgb = flow_to_rgb(flow)
    assert rgb[0, 0].tolist() == [255, 127, 127]
    assert rgb[0, 1].tolist() == [255, 0, 0]


@pytest.mark.parametrize("factor", [0.01, 0.5, 3.0, 1000.0])
def test_scaling_the_flow_does_not_change_the_image(factor: float) -> None:
    """Only directions and relative magnitudes matter."""
    flow = np.random.default_rng(0).normal(size=(12, 16, 2)).astype(np.float32)
    assert np.array_equal(flow_to_rgb(flow), flow_to_rgb(flow * np.float32(factor)))


def test_resize_flow_scales_displacements() -> None:
    """Halving the height and doubling the width halves dy and doubles dx."""
    flow = _uniform(2.0, 1.0, height=10, width=20)
    resized = resize_flow(flow, 5, 40)
    assert resized.shape == (5, 40, 2)
    assert (resized[..., 0] == 4.0).all()
    assert (resized[..., 1] == 0.5).all()
    assert (flow[..., 0] == 2.0).all()  # the input is not modified
    assert resize_flow(flow, 10, 20) is flow


def test_dis_flow_recovers_a_shift(make_frame: Callable[..., np.ndarray]) -> None:
    """Texture moved by (dx, dy) = (3, −2): median DIS flow within 0.5 px of it."""
    before = make_frame(64, 80, seed=1)
    after = make_frame(64, 80, seed=1, shift=(3, -2))
    flow = compute_dis_flow(before, after)
    assert flow.shape == (64, 80, 2) and flow.dtype == np.float32
    inner = flow[8:-8, 8:-8]
    assert abs(np.median(inner[..., 0]) - 3.0) <= 0.5
    assert abs(np.median(inner[..., 1]) + 2.0) <= 0.5


def test_dis_flow_of_tiny_frames_is_zero() -> None:
    """Frames under 16 px on a side get zero flow instead of an OpenCV failure."""
    frame = np.random.default_rng(0).integers(0, 256, (15, 40, 3), dtype=np.uint8)
    flow = compute_dis_flow(frame, frame[:, ::-1])
    assert flow.shape == (15, 40, 2) and flow.dtype == np.float32
    assert not flow.any()


def test_dis_flow_errors() -> None:
    """Unknown preset and frames of different shapes are refused."""
    frame = np.zeros((20, 20, 3), np.uint8)
    with pytest.raises(InputError, match=r"unknown DIS preset 'slow'; expected one of \['fast'"):
        compute_dis_flow(frame, frame, preset="slow")
    with pytest.raises(InputError, match=r"frames differ in shape: \(20, 20, 3\) vs \(20, 21, 3\)"):
        compute_dis_flow(frame, np.zeros((20, 21, 3), np.uint8))


def test_check_flow() -> None:
    """Right shape and finite floats pass (as float32); anything else names the problem."""
    assert check_flow(np.zeros((3, 4, 2)), 3, 4).dtype == np.float32
    with pytest.raises(InputError, match=r"flow must have shape \(3, 4, 2\) .*got \(4, 3, 2\)"):
        check_flow(np.zeros((4, 3, 2), np.float32), 3, 4)
    with pytest.raises(InputError, match="flow must be floating point, got int32"):
        check_flow(np.zeros((3, 4, 2), np.int32), 3, 4)
    for bad in (np.nan, np.inf, -np.inf):
        flow = np.zeros((3, 4, 2), np.float32)
        flow[1, 2, 0] = bad
        with pytest.raises(InputError, match="flow contains NaN or inf values"):
            check_flow(flow, 3, 4)
