"""Render masks and class labels over a frame, for rqt/rviz and for the demo's contact sheet."""

from __future__ import annotations

import cv2
import numpy as np

_PALETTE = np.array(
    [[0, 0, 0], [255, 64, 64], [64, 160, 255], [255, 200, 0], [160, 80, 255],
     [0, 200, 120], [255, 120, 200], [120, 255, 255]],
    dtype=np.uint8,
)


def class_colour(class_id: int) -> np.ndarray:
    """A stable RGB colour for a class id (0 = background is black)."""
    return _PALETTE[class_id % len(_PALETTE)] if class_id else _PALETTE[0]


def render_overlay(
    frame: np.ndarray, mask: np.ndarray, labels: np.ndarray | None = None, opacity: float = 0.5
) -> np.ndarray:
    """H×W×3 uint8 RGB frame with taught classes tinted and the object mask outlined in red."""
    out = frame.astype(np.float32)
    if labels is not None:
        for class_id in np.unique(labels):
            if class_id == 0:
                continue
            region = labels == class_id
            out[region] = (1 - opacity) * out[region] + opacity * class_colour(int(class_id))
    region = mask > 0
    out[region] = (1 - opacity) * out[region] + opacity * _PALETTE[1]
    out = out.clip(0, 255).astype(np.uint8)
    contours, _ = cv2.findContours(region.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, contours, -1, (255, 0, 0), 2)
    return out
