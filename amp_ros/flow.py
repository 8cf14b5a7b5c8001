"""Optical flow for the motion stream: OpenCV DIS flow and its rendering as the stream's input."""

from __future__ import annotations

import cv2
import numpy as np

from amp_ros.camera_motion import remove_camera_motion
from amp_ros.errors import InputError

# What the motion stream sees (a checkpoint's ``input.motion``): the flow as it is, or the flow
# minus the camera's fitted motion (amp_ros.camera_motion); both in the Middlebury colours.
MOTION_INPUTS = ("flow", "flow-minus-camera")

_DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}
DIS_PRESETS = tuple(_DIS_PRESETS)  # fastest first

_DIS_MIN_SIDE = 16  # DIS's image pyramid fails on smaller frames


def check_flow(flow: np.ndarray, height: int, width: int) -> np.ndarray:
    """Validate a flow field (H×W×2 pixel displacements) for a frame of height×width."""
    flow = np.asarray(flow)
    if flow.shape != (height, width, 2):
        raise InputError(
            f"flow must have shape ({height}, {width}, 2) to match the frame, got {flow.shape}"
        )
    if not np.issubdtype(flow.dtype, np.floating):
        raise InputError(f"flow must be floating point, got {flow.dtype}")
    if not np.isfinite(flow).all():
        raise InputError("flow contains NaN or inf values")
    return flow.astype(np.float32, copy=False)


def compute_dis_flow(prev_rgb: np.ndarray, next_rgb: np.ndarray, preset: str = "medium") -> np.ndarray:
    """Dense flow from ``prev_rgb`` to ``next_rgb`` (both H×W×3 uint8) with OpenCV DIS.

    Returns H×W×2 float32 pixel displacements (dx, dy); zero for frames too small for DIS
    (either side under 16 px).
    """
    if preset not in _DIS_PRESETS:
        raise InputError(f"unknown DIS preset {preset!r}; expected one of {sorted(_DIS_PRESETS)}")
    if prev_rgb.shape != next_rgb.shape:
        raise InputError(f"frames differ in shape: {prev_rgb.shape} vs {next_rgb.shape}")
    if min(prev_rgb.shape[:2]) < _DIS_MIN_SIDE:
        return np.zeros((*prev_rgb.shape[:2], 2), np.float32)
    dis = cv2.DISOpticalFlow_create(_DIS_PRESETS[preset])
    prev_grey = cv2.cvtColor(np.ascontiguousarray(prev_rgb), cv2.COLOR_RGB2GRAY)
    next_grey = cv2.cvtColor(np.ascontiguousarray(next_rgb), cv2.COLOR_RGB2GRAY)
    return dis.calc(prev_grey, next_grey, None).astype(np.float32, copy=False)


def resize_flow(flow: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize an H×W×2 flow field to height×width, scaling the displacements with the pixels."""
    old_h, old_w = flow.shape[:2]
    if (old_h, old_w) == (height, width):
        return flow
    resized = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR)
    resized[..., 0] *= width / old_w
    resized[..., 1] *= height / old_h
    return resized


def flow_to_rgb(flow: np.ndarray) -> np.ndarray:
    """Render H×W×2 flow as H×W×3 uint8 RGB with the Middlebury colour wheel.

    Normalised by the frame's largest displacement, as the motion stream expects; zero flow
    renders white.
    """
    import torch  # lazily: the bag tools use DIS flow without paying for torch
    from torchvision.utils import flow_to_image

    tensor = torch.from_numpy(np.ascontiguousarray(flow.transpose(2, 0, 1), dtype=np.float32))
    return flow_to_image(tensor).permute(1, 2, 0).numpy()


def render_motion(flow: np.ndarray, motion: str = "flow") -> np.ndarray:
    """The motion stream's H×W×3 uint8 input for H×W×2 ``flow``, as ``motion`` names it."""
    if motion == "flow-minus-camera":
        flow = remove_camera_motion(flow)
    elif motion != "flow":
        raise InputError(f"unknown motion input {motion!r}; expected one of {MOTION_INPUTS}")
    return flow_to_rgb(flow)
