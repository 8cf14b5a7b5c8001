"""NMAP: normalised masked average pooling (AMP eq. 1) and the adaptive update (eq. 2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from amp_ros.errors import EmptyMaskError, InputError

IGNORE = 255
"""Label value of pixels that belong to no class (kept out of every proxy)."""


def nmap(features: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Proxy of one class from k shots: masked average per shot, mean over shots, L2-normalised.

    features: K×C×h×w (or C×h×w for one shot), any float dtype.
    masks: K×H×W (or H×W) binary masks of the class (bool or 0/1); any size. When H×W differs
    from h×w the mask is area-resized to the feature grid, i.e. each feature cell is weighted by
    the fraction of its area the class covers (equal to pooling on the label grid up to
    rounding, and much cheaper).
    Returns the C-vector P̂ with ‖P̂‖₂ = 1. Raises EmptyMaskError if any shot's mask is empty.
    """
    if features.dim() == 3:
        features = features.unsqueeze(0)
    if masks.dim() == 2:
        masks = masks.unsqueeze(0)
    if features.dim() != 4 or masks.dim() != 3:
        raise InputError(
            f"nmap expects features K×C×h×w and masks K×H×W, got {tuple(features.shape)} "
            f"and {tuple(masks.shape)}"
        )
    if features.shape[0] != masks.shape[0]:
        raise InputError(
            f"nmap got {features.shape[0]} feature maps but {masks.shape[0]} masks"
        )
    if masks.dtype != torch.bool and ((masks != 0) & (masks != 1)).any():
        raise InputError("nmap masks must be binary (0/1 or bool); map ignore pixels to 0 first")
    weights = masks.to(features.dtype)
    counts = weights.flatten(1).sum(1)
    if (counts == 0).any():
        empty = [i for i, c in enumerate(counts.tolist()) if c == 0]
        raise EmptyMaskError(f"mask of shot(s) {empty} selects no pixel; no proxy can be computed")
    if weights.shape[-2:] != features.shape[-2:]:
        weights = F.interpolate(weights.unsqueeze(1), size=features.shape[-2:], mode="area")
        weights = weights.squeeze(1)
    per_shot = torch.einsum("kchw,khw->kc", features, weights) / weights.flatten(1).sum(1, keepdim=True)
    proxy = per_shot.mean(0)
    norm = proxy.norm()
    if not torch.isfinite(norm) or norm == 0:
        raise InputError("the masked features are all zero or not finite; no proxy can be computed")
    return proxy / norm


def blend(weight: torch.Tensor, proxy: torch.Tensor, alpha: float) -> torch.Tensor:
    """Adaptive proxy update W ← α·P̂ + (1−α)·W, re-normalised (α=0 returns W unchanged)."""
    if not 0.0 <= alpha <= 1.0:
        raise InputError(f"alpha must lie in [0, 1], got {alpha}")
    if weight.shape != proxy.shape:
        raise InputError(f"proxy shape {tuple(proxy.shape)} differs from weight {tuple(weight.shape)}")
    if alpha == 0.0:
        return weight.clone()
    mixed = alpha * proxy.to(weight.dtype) + (1.0 - alpha) * weight
    norm = mixed.norm()
    if not torch.isfinite(norm) or norm == 0:
        raise InputError("the blended weight is zero or not finite (proxy opposite to the weight?)")
    return mixed / norm
