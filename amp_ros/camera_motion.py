"""The camera's own motion in a flow field: a robust affine fit, subtracted so that what moves
in the scene stands out in the motion stream's input.

A panning or shaking camera moves every background pixel; rendered as it is, that flow hides
the object (the rendering is normalised by the frame's largest displacement). Most of a frame
is background, so an affine field fitted by trimmed least squares (refitted on the half of the
pixels it explains best) describes the camera, and the residual describes the scene.
"""

from __future__ import annotations

import numpy as np

KEEP = 0.5  # fraction of sample points each refit keeps (the best-explained ones)
ITERATIONS = 3  # trimmed least-squares fits
STRIDE = 4  # fit on every 4th pixel in each direction; the field is evaluated everywhere


def _design(height: int, width: int, stride: int) -> np.ndarray:
    """N×3 rows (1, x, y) with x, y centred and scaled by the frame size (well conditioned)."""
    ys, xs = np.mgrid[0:height:stride, 0:width:stride].astype(np.float64)
    return np.stack([np.ones(xs.size), (xs.ravel() - width / 2) / width,
                     (ys.ravel() - height / 2) / height], axis=1)


def fit_camera_motion(flow: np.ndarray, keep: float = KEEP, iterations: int = ITERATIONS,
                      stride: int = STRIDE) -> np.ndarray:
    """The affine flow field (H×W×2 float32) that best explains most of ``flow`` (H×W×2).

    Trimmed least squares: fit on all sample points, then ``iterations - 1`` refits on the
    ``keep`` fraction with the smallest residuals, so an object covering less than about
    ``1 - keep`` of the frame does not pull the fit.
    """
    if not 0.0 < keep <= 1.0 or iterations < 1 or stride < 1:
        raise ValueError("keep must lie in (0, 1], iterations and stride must be positive")
    height, width = flow.shape[:2]
    design = _design(height, width, stride)
    samples = flow[::stride, ::stride].reshape(-1, 2).astype(np.float64)
    chosen = np.ones(len(samples), bool)
    for i in range(iterations):
        coefficients, *_ = np.linalg.lstsq(design[chosen], samples[chosen], rcond=None)
        if i + 1 < iterations:
            residual = np.linalg.norm(design @ coefficients - samples, axis=1)
            chosen = residual <= np.quantile(residual, keep)
    # evaluate the affine field on the full grid: constant + x term (per column) + y term (per row)
    xs = ((np.arange(width) - width / 2) / width)[None, :, None]
    ys = ((np.arange(height) - height / 2) / height)[:, None, None]
    field = coefficients[0] + xs * coefficients[1] + ys * coefficients[2]
    return field.astype(np.float32)


def remove_camera_motion(flow: np.ndarray) -> np.ndarray:
    """``flow`` minus its fitted camera motion (H×W×2 float32): the scene's own motion."""
    return (flow.astype(np.float32, copy=False) - fit_camera_motion(flow)).astype(np.float32)
