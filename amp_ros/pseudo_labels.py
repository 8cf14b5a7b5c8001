"""Self-adaptation targets: pseudo-labels from the model's own object probability (MotAdapt).

Foreground = confident pixels (p > threshold); background = pixels far from the eroded
foreground (distance transform); everything else is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from amp_ros.errors import InputError
from amp_ros.proxies import IGNORE
from amp_ros.setting_fields import setting


@dataclass(frozen=True)
class PseudoLabelConfig:
    """Thresholds of the pseudo-labeller; distances are fractions of the image diagonal."""

    foreground_threshold: float = field(
        default=0.8,
        metadata=setting("pseudo-label: object probability above this is foreground", (0.0, 1.0)),
    )
    erosion: float = field(
        default=0.01,
        metadata=setting("pseudo-label: foreground erosion, fraction of the diagonal", (0.0, 0.5)),
    )
    background_distance: float = field(
        default=0.1,
        metadata=setting(
            "pseudo-label: background lies this far from the foreground (fraction of the diagonal)",
            (0.0, 1.0),
        ),
    )


def pseudo_labels(probability: np.ndarray, config: PseudoLabelConfig) -> np.ndarray | None:
    """h×w object probability → h×w uint8 labels (0 bg, 1 fg, 255 ignore), or None.

    None means there is no confident foreground, so this frame must not adapt the proxies.
    """
    if probability.ndim != 2:
        raise InputError(f"pseudo_labels expects an h×w probability map, got {probability.shape}")
    diagonal = float(np.hypot(*probability.shape))
    foreground = (probability > config.foreground_threshold).astype(np.uint8)
    radius = int(round(config.erosion * diagonal))
    if radius > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        foreground = cv2.erode(foreground, kernel)
    if not foreground.any():
        return None
    distance = cv2.distanceTransform(1 - foreground, cv2.DIST_L2, 5)
    labels = np.full(probability.shape, IGNORE, dtype=np.uint8)
    labels[distance > config.background_distance * diagonal] = 0
    labels[foreground > 0] = 1
    return labels
