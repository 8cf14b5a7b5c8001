"""Dense CRF refinement (Krähenbühl & Koltun) of softmax probabilities, with pydensecrf2."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pydensecrf.densecrf as dcrf
from pydensecrf.utils import unary_from_softmax

from amp_ros.errors import InputError
from amp_ros.setting_fields import setting


@dataclass(frozen=True)
class CrfConfig:
    """Kernel settings; spatial widths are in pixels of the original frame.

    Defaults are the settings the AMP authors' group used on DAVIS (amp-method.md).
    """

    iterations: int = field(default=12, metadata=setting("mean-field iterations", (0, 100)))
    gaussian_sxy: float = field(
        default=0.22, metadata=setting("Gaussian kernel width (px at frame size)", (0.0, 1000.0))
    )
    gaussian_compat: float = field(default=1.25, metadata=setting("Gaussian kernel weight", (0.0, 100.0)))
    bilateral_sxy: float = field(
        default=22.4,
        metadata=setting("bilateral kernel spatial width (px at frame size)", (0.0, 1000.0)),
    )
    bilateral_srgb: float = field(
        default=7.7, metadata=setting("bilateral kernel colour width", (0.0, 255.0))
    )
    bilateral_compat: float = field(default=1.40, metadata=setting("bilateral kernel weight", (0.0, 100.0)))


def refine(probabilities: np.ndarray, frame: np.ndarray, config: CrfConfig, scale: float = 1.0) -> np.ndarray:
    """Mean-field inference of a fully connected CRF.

    probabilities: K×h×w float (softmax, sums to 1 over K); frame: h×w×3 uint8 RGB;
    scale: h / original frame height, so spatial widths given at frame size shrink with it.
    Returns the K×h×w float32 posterior marginals.
    """
    if probabilities.ndim != 3 or probabilities.shape[1:] != frame.shape[:2]:
        raise InputError(
            f"CRF needs K×h×w probabilities matching the h×w×3 frame, got "
            f"{probabilities.shape} and {frame.shape}"
        )
    if config.iterations < 0:
        raise InputError(f"CRF iterations must be >= 0, got {config.iterations}")
    labels, height, width = probabilities.shape
    crf = dcrf.DenseCRF2D(width, height, labels)
    crf.setUnaryEnergy(np.ascontiguousarray(unary_from_softmax(probabilities.astype(np.float32))))
    crf.addPairwiseGaussian(sxy=max(config.gaussian_sxy * scale, 1e-3), compat=config.gaussian_compat)
    crf.addPairwiseBilateral(
        sxy=max(config.bilateral_sxy * scale, 1e-3),
        srgb=config.bilateral_srgb,
        rgbim=np.ascontiguousarray(frame, dtype=np.uint8),
        compat=config.bilateral_compat,
    )
    marginals = np.array(crf.inference(config.iterations), dtype=np.float32)
    return marginals.reshape(labels, height, width)
