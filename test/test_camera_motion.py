"""The camera's fitted motion: exact on affine fields, blind to a small moving object."""

from __future__ import annotations

import numpy as np
import pytest

from amp_ros.camera_motion import fit_camera_motion, remove_camera_motion
from amp_ros.errors import InputError
from amp_ros.flow import flow_to_rgb, render_motion


def _affine(height: int, width: int, pan: tuple[float, float], zoom: float) -> np.ndarray:
    """A pan plus a zoom about the frame centre, in pixels."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    flow = np.empty((height, width, 2), np.float32)
    flow[..., 0] = pan[0] + zoom * (xs - width / 2)
    flow[..., 1] = pan[1] + zoom * (ys - height / 2)
    return flow


def test_zero_flow_fits_zero() -> None:
    """A still camera: the fitted field is zero and nothing is removed."""
    flow = np.zeros((18, 32, 2), np.float32)
    assert np.array_equal(fit_camera_motion(flow), flow)
    assert np.array_equal(remove_camera_motion(flow), flow)


def test_an_affine_field_is_recovered_exactly() -> None:
    """Pan (3, −2) px and a 2 % zoom everywhere: the fit is that field (to float precision)."""
    flow = _affine(36, 64, (3.0, -2.0), 0.02)
    assert np.abs(fit_camera_motion(flow) - flow).max() < 1e-4
    assert np.abs(remove_camera_motion(flow)).max() < 1e-4


def test_a_moving_object_keeps_its_own_motion() -> None:
    """An object on a fifth of the frame moving 6 px right against a panning background: the
    background's residual is zero and the object's is its motion relative to the camera."""
    flow = _affine(40, 60, (-4.0, 1.0), 0.0)
    flow[10:26, 20:35] += (6.0, 0.0)  # 16×15 of 40×60 pixels = 10 %
    residual = remove_camera_motion(flow)
    background = np.ones(flow.shape[:2], bool)
    background[10:26, 20:35] = False
    assert np.abs(residual[background]).max() < 1e-4
    assert np.abs(residual[10:26, 20:35] - (6.0, 0.0)).max() < 1e-4


def test_bad_parameters() -> None:
    with pytest.raises(ValueError, match="keep must lie"):
        fit_camera_motion(np.zeros((8, 8, 2), np.float32), keep=0.0)


def test_render_motion() -> None:
    """``flow`` renders the flow as it is, ``flow-minus-camera`` the residual after the camera's
    motion; an unknown name is an InputError."""
    flow = _affine(16, 24, (2.0, 0.5), 0.01)
    flow[4:9, 5:12] += (0.0, 3.0)
    assert np.array_equal(render_motion(flow, "flow"), flow_to_rgb(flow))
    assert np.array_equal(render_motion(flow, "flow-minus-camera"),
                          flow_to_rgb(remove_camera_motion(flow)))
    with pytest.raises(InputError, match="unknown motion input 'depth'"):
        render_motion(flow, "depth")
