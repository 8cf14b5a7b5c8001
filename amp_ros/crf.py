"""Dense CRF refinement (Krähenbühl & Koltun) of softmax probabilities.

Two implementations of the same mean-field inference: ``torch`` (:mod:`amp_ros.permutohedral`
for the bilateral kernel, an exact Gaussian convolution for the smoothness kernel; runs on the
CPU or a GPU) and ``pydensecrf`` (pydensecrf2, the reference the torch one is tested against).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor, Future
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

    Defaults are the settings the AMP authors' group used on DAVIS (amp-method.md), except the
    bilateral weight (4 instead of 1.40, better on both cross-validation folds) and the
    iterations (5 instead of 12: J within 0.002 on both folds, a third less CRF time); see
    docs/results.md.
    """

    iterations: int = field(default=5, metadata=setting("mean-field iterations", (0, 100)))
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
    bilateral_compat: float = field(default=4.0, metadata=setting("bilateral kernel weight", (0.0, 100.0)))
    backend: str = field(
        default="torch",
        metadata=setting("implementation: torch (faster; on the network's device) or pydensecrf", BACKENDS),
    )


def refine(
    probabilities: np.ndarray, frame: np.ndarray, config: CrfConfig, scale: float = 1.0, device: str = "cpu"
) -> np.ndarray:
    """Mean-field inference of a fully connected CRF (one map of one frame; :class:`FrameCrf`
    refines several maps of a frame with its kernels built once).

    probabilities: K×h×w float (softmax, sums to 1 over K); frame: h×w×3 uint8 RGB;
    scale: h / original frame height, so spatial widths given at frame size shrink with it;
    device: where the torch backend runs. Returns the K×h×w float32 posterior marginals.
    """
    return FrameCrf(frame, config, scale, device).refine(probabilities)


class FrameCrf:
    """The dense CRF of one frame: its kernels (the bilateral lattice is most of the cost) are
    built once and reused for every map of the frame, such as each taught class's.

    They depend on the frame alone, so with an ``executor`` (a worker thread) the torch backend
    starts building them at once, while the caller runs the network; otherwise on the first
    refinement.
    """

    def __init__(self, frame: np.ndarray, config: CrfConfig, scale: float = 1.0, device: str = "cpu",
                 executor: Executor | None = None):
        if config.iterations < 0:
            raise InputError(f"CRF iterations must be >= 0, got {config.iterations}")
        if config.backend not in BACKENDS:
            raise InputError(f"unknown CRF backend {config.backend!r}; one of {BACKENDS}")
        self.frame, self.config, self.scale, self.device = frame, config, scale, device
        self._kernels: list[tuple[_Normalised, float]] | None = None
        self._building: Future | None = None
        if executor is not None and config.backend == "torch" and config.iterations > 0:
            self._building = executor.submit(self._build)

    def refine(self, probabilities: np.ndarray) -> np.ndarray:
        """K×h×w softmax probabilities of this frame → K×h×w float32 marginals."""
        if probabilities.ndim != 3 or probabilities.shape[1:] != self.frame.shape[:2]:
            raise InputError(
                f"CRF needs K×h×w probabilities matching the h×w×3 frame, got "
                f"{probabilities.shape} and {self.frame.shape}"
            )
        if self.config.backend == "pydensecrf":
            return _refine_pydensecrf(probabilities, self.frame, self.config, self.scale)
        tensor = torch.from_numpy(np.ascontiguousarray(probabilities, dtype=np.float32)).to(self.device)
        return self.mean_field(tensor).cpu().numpy()

    def mean_field(self, probabilities: torch.Tensor) -> torch.Tensor:
        """The torch inference on K×h×w probabilities (on this CRF's device). Each iteration adds,
        per class, the kernel-weighted (symmetrically normalised) probabilities of the other
        pixels, times the kernel's weight, to the log-unary, then takes the softmax."""
        labels, height, width = probabilities.shape
        log_unary = probabilities.clamp(_CLIP, 1.0).log().reshape(labels, -1)
        q = torch.softmax(log_unary, 0)
        if self.config.iterations == 0:
            return q.reshape(labels, height, width)
        kernels = self._built()
        for _ in range(self.config.iterations):
            energy = log_unary.clone()
            for kernel, weight in kernels:
                energy += weight * kernel(q)
            q = torch.softmax(energy, 0)
        return q.reshape(labels, height, width)

    def _built(self) -> list[tuple[_Normalised, float]]:
        if self._kernels is None:
            self._kernels = self._build() if self._building is None else self._building.result()
        return self._kernels

    def _build(self) -> list[tuple[_Normalised, float]]:
        config, (height, width) = self.config, self.frame.shape[:2]
        frame = torch.from_numpy(np.ascontiguousarray(self.frame)).to(self.device)
        rows = torch.arange(height, dtype=torch.float32, device=frame.device)
        columns = torch.arange(width, dtype=torch.float32, device=frame.device)
        y, x = torch.meshgrid(rows, columns, indexing="ij")
        position = torch.stack([x.reshape(-1), y.reshape(-1)], 1)
        colour = frame.reshape(-1, 3).float()
        bilateral_sxy = max(config.bilateral_sxy * self.scale, 1e-3)
        features = torch.cat([position / bilateral_sxy, colour / config.bilateral_srgb], 1)
        bilateral = PermutohedralLattice(features)
        smoothness = _SeparableGaussian(max(config.gaussian_sxy * self.scale, 1e-3), height, width,
                                        frame.device)
        ones = torch.ones(1, height * width, device=frame.device)
        return [
            (_Normalised(bilateral.filter, ones), config.bilateral_compat),
            (_Normalised(smoothness.filter, ones), config.gaussian_compat),
        ]


class _Normalised:
    """A kernel with pydensecrf's symmetric normalisation, n·K(n·q) with n = (K·1)^(-1/2).

    Filters K-1 of the K class rows: the last is n·K(n) minus the others (the rows of q sum to 1).
    """

    def __init__(self, kernel: Callable[[torch.Tensor], torch.Tensor], ones: torch.Tensor):
        self._kernel = kernel
        self._norm = kernel(ones).clamp_min(1e-20).rsqrt()
        self._all = self._norm * kernel(self._norm)

    def __call__(self, q: torch.Tensor) -> torch.Tensor:
        filtered = self._norm * self._kernel(self._norm * q[:-1])
        return torch.cat([filtered, self._all - filtered.sum(0, keepdim=True)])


class _SeparableGaussian:
    """Exact Gaussian filtering over the pixel grid (zero outside the frame); a width under a
    fifth of a pixel leaves every pixel alone, as pydensecrf's lattice does for such widths."""

    def __init__(self, sigma: float, height: int, width: int, device: torch.device):
        self._shape = (height, width)
        self._radius = 0 if sigma < 0.2 else int(np.ceil(3.0 * sigma))
        offsets = torch.arange(-self._radius, self._radius + 1, dtype=torch.float32, device=device)
        self._taps = torch.exp(-(offsets**2) / (2.0 * sigma**2))

    def filter(self, values: torch.Tensor) -> torch.Tensor:
        if self._radius == 0:
            return values
        maps = values.reshape(-1, 1, *self._shape)
        maps = F.conv2d(maps, self._taps.view(1, 1, 1, -1), padding=(0, self._radius))
        maps = F.conv2d(maps, self._taps.view(1, 1, -1, 1), padding=(self._radius, 0))
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
