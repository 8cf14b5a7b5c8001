"""Dense CRF refinement (Krähenbühl & Koltun) of softmax probabilities.

Two implementations of the same mean-field inference: ``torch`` (:mod:`amp_ros.permutohedral`
for the bilateral kernel, an exact Gaussian convolution for the smoothness kernel; runs on the
CPU or a GPU) and ``pydensecrf`` (pydensecrf2, the reference the torch one is tested against).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pydensecrf.densecrf as dcrf
import torch
import torch.nn.functional as F
from pydensecrf.utils import unary_from_softmax

from amp_ros.errors import InputError
from amp_ros.permutohedral import PermutohedralLattice
from amp_ros.setting_fields import setting

BACKENDS = ("torch", "pydensecrf")
_CLIP = 1e-5  # probabilities are clipped here before the log, as pydensecrf's unary_from_softmax


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
    backend: str = field(
        default="torch",
        metadata=setting("implementation: torch (faster; on the network's device) or pydensecrf", BACKENDS),
    )


def refine(
    probabilities: np.ndarray, frame: np.ndarray, config: CrfConfig, scale: float = 1.0, device: str = "cpu"
) -> np.ndarray:
    """Mean-field inference of a fully connected CRF.

    probabilities: K×h×w float (softmax, sums to 1 over K); frame: h×w×3 uint8 RGB;
    scale: h / original frame height, so spatial widths given at frame size shrink with it;
    device: where the torch backend runs. Returns the K×h×w float32 posterior marginals.
    """
    if probabilities.ndim != 3 or probabilities.shape[1:] != frame.shape[:2]:
        raise InputError(
            f"CRF needs K×h×w probabilities matching the h×w×3 frame, got "
            f"{probabilities.shape} and {frame.shape}"
        )
    if config.iterations < 0:
        raise InputError(f"CRF iterations must be >= 0, got {config.iterations}")
    if config.backend == "pydensecrf":
        return _refine_pydensecrf(probabilities, frame, config, scale)
    if config.backend != "torch":
        raise InputError(f"unknown CRF backend {config.backend!r}; one of {BACKENDS}")
    posterior = mean_field(
        torch.from_numpy(np.ascontiguousarray(probabilities, dtype=np.float32)).to(device),
        torch.from_numpy(np.ascontiguousarray(frame)).to(device), config, scale,
    )
    return posterior.cpu().numpy()


def mean_field(
    probabilities: torch.Tensor, frame: torch.Tensor, config: CrfConfig, scale: float = 1.0
) -> torch.Tensor:
    """The torch mean-field inference: K×h×w probabilities and an h×w×3 uint8 frame on one
    device → K×h×w marginals. Each iteration adds, per class, the kernel-weighted (symmetrically
    normalised) probabilities of the other pixels with the kernel's weight to the log-unary."""
    labels, height, width = probabilities.shape
    log_unary = probabilities.clamp(_CLIP, 1.0).log().reshape(labels, -1)
    if config.iterations == 0:
        return torch.softmax(log_unary, 0).reshape(labels, height, width)
    rows = torch.arange(height, dtype=torch.float32, device=frame.device)
    columns = torch.arange(width, dtype=torch.float32, device=frame.device)
    y, x = torch.meshgrid(rows, columns, indexing="ij")
    position = torch.stack([x.reshape(-1), y.reshape(-1)], 1)
    colour = frame.reshape(-1, 3).float()
    bilateral_sxy = max(config.bilateral_sxy * scale, 1e-3)
    bilateral = PermutohedralLattice(torch.cat([position / bilateral_sxy, colour / config.bilateral_srgb], 1))
    smoothness = _SeparableGaussian(max(config.gaussian_sxy * scale, 1e-3), height, width)
    kernels = [
        (_Normalised(bilateral.filter, log_unary), config.bilateral_compat),
        (_Normalised(smoothness.filter, log_unary), config.gaussian_compat),
    ]
    q = torch.softmax(log_unary, 0)
    for _ in range(config.iterations):
        energy = log_unary.clone()
        for kernel, weight in kernels:
            energy += weight * kernel(q)
        q = torch.softmax(energy, 0)
    return q.reshape(labels, height, width)


class _Normalised:
    """A kernel with pydensecrf's symmetric normalisation, n·K(n·q) with n = (K·1)^(-1/2).

    Filters K-1 of the K class rows: the last is n·K(n) minus the others (the rows of q sum to 1).
    """

    def __init__(self, kernel: Callable[[torch.Tensor], torch.Tensor], like: torch.Tensor):
        self._kernel = kernel
        self._norm = kernel(like.new_ones(1, like.shape[1])).clamp_min(1e-20).rsqrt()
        self._all = self._norm * kernel(self._norm)

    def __call__(self, q: torch.Tensor) -> torch.Tensor:
        filtered = self._norm * self._kernel(self._norm * q[:-1])
        return torch.cat([filtered, self._all - filtered.sum(0, keepdim=True)])


class _SeparableGaussian:
    """Exact Gaussian filtering over the pixel grid (zero outside the frame); a width under a
    fifth of a pixel leaves every pixel alone, as pydensecrf's lattice does for such widths."""

    def __init__(self, sigma: float, height: int, width: int):
        self._shape = (height, width)
        self._radius = 0 if sigma < 0.2 else int(np.ceil(3.0 * sigma))
        offsets = torch.arange(-self._radius, self._radius + 1, dtype=torch.float32)
        self._taps = torch.exp(-(offsets**2) / (2.0 * sigma**2))

    def filter(self, values: torch.Tensor) -> torch.Tensor:
        if self._radius == 0:
            return values
        taps = self._taps.to(values.device)
        maps = values.reshape(-1, 1, *self._shape)
        maps = F.conv2d(maps, taps.view(1, 1, 1, -1), padding=(0, self._radius))
        maps = F.conv2d(maps, taps.view(1, 1, -1, 1), padding=(self._radius, 0))
        return maps.reshape(values.shape)


def _refine_pydensecrf(
    probabilities: np.ndarray, frame: np.ndarray, config: CrfConfig, scale: float
) -> np.ndarray:
    labels, height, width = probabilities.shape
    crf = dcrf.DenseCRF2D(width, height, labels)
    crf.setUnaryEnergy(np.ascontiguousarray(unary_from_softmax(probabilities.astype(np.float32), clip=_CLIP)))
    crf.addPairwiseGaussian(sxy=max(config.gaussian_sxy * scale, 1e-3), compat=config.gaussian_compat)
    crf.addPairwiseBilateral(
        sxy=max(config.bilateral_sxy * scale, 1e-3),
        srgb=config.bilateral_srgb,
        rgbim=np.ascontiguousarray(frame, dtype=np.uint8),
        compat=config.bilateral_compat,
    )
    marginals = np.array(crf.inference(config.iterations), dtype=np.float32)
    return marginals.reshape(labels, height, width)
