"""Masks and probability maps carried from one frame to the next along the optical flow.

The flow is the pipeline's: previous → current frame, on the previous frame's grid, in pixels.
Used by the pipeline to complete a teach on the next moving frame (:func:`carry_mask`) and to mix
the previous frame's mask into the current one (:func:`carry_probability`, ``propagation``).
"""

from __future__ import annotations

import cv2
import numpy as np


def carry_mask(mask: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """An h×w boolean mask moved along h×w×2 flow (previous → current frame, previous grid):
    each pixel forward to its rounded target, holes of one pixel closed."""
    height, width = mask.shape
    ys, xs = np.nonzero(mask)
    tx = np.clip(np.rint(xs + flow[ys, xs, 0]), 0, width - 1).astype(np.intp)
    ty = np.clip(np.rint(ys + flow[ys, xs, 1]), 0, height - 1).astype(np.intp)
    carried = np.zeros((height, width), np.uint8)
    carried[ty, tx] = 1
    kernel = np.ones((3, 3), np.uint8)
    return cv2.morphologyEx(carried, cv2.MORPH_CLOSE, kernel).astype(bool)


def carry_probability(probability: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """An h×w probability map moved along h×w×2 flow (previous → current frame): each pixel
    reads the previous map where the flow at its place points back to."""
    height, width = probability.shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    return cv2.remap(probability.astype(np.float32), xs - flow[..., 0], ys - flow[..., 1],
                     cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
