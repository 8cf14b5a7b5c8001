"""Episodic (prototype) training term: make imprinted proxies discriminative.

An episode takes two frames of one sequence: the *support* frame's mask imprints an object and a
background proxy on every head level (NMAP, AMP eq. 1, differentiable), and the *query* frame is
classified with those two proxies alone (cosine logits at the model's learned scale). The loss
is the query's cross-entropy. This is exactly what ``/amp/teach`` does at run time, so features
trained with it make a class taught from one frame segment that object in the frames after.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from amp_ros.training.augment import IGNORE  # label value excluded from the loss


def masked_proxies(features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-sample background and object proxies: N×2×C unit vectors (row 0 background).

    features: N×C×h×w (unit vectors per pixel); labels: N×H×W int (0 bg, 1 object, 255 ignore),
    area-resized to the feature grid. Every sample needs both classes (checked by the sampler).
    """
    masks = torch.stack([labels == 0, labels == 1], dim=1).to(features.dtype)
    if masks.shape[-2:] != features.shape[-2:]:
        masks = F.interpolate(masks, size=features.shape[-2:], mode="area")
    sums = torch.einsum("nchw,nkhw->nkc", features, masks)
    counts = masks.flatten(2).sum(2).clamp_min(1e-6)
    return F.normalize(sums / counts[..., None], dim=2)


def episode_logits(
    support: Sequence[torch.Tensor],
    support_labels: torch.Tensor,
    query: Sequence[torch.Tensor],
    scale: torch.Tensor,
    size: tuple[int, int],
) -> torch.Tensor:
    """Query logits N×2×H×W from proxies imprinted on the support, summed over head levels.

    support, query: one N×C_l×h_l×w_l feature map per level (unit vectors per pixel).
    """
    total = None
    for feature_s, feature_q in zip(support, query, strict=True):
        proxies = masked_proxies(feature_s, support_labels)
        cosine = torch.einsum("nchw,nkc->nkhw", F.normalize(feature_q, dim=1), proxies)
        cosine = F.interpolate(cosine, size=size, mode="bilinear", align_corners=False)
        total = cosine if total is None else total + cosine
    return scale * total


def prototype_loss(
    support: Sequence[torch.Tensor],
    support_labels: torch.Tensor,
    query: Sequence[torch.Tensor],
    query_labels: torch.Tensor,
    scale: torch.Tensor,
) -> torch.Tensor:
    """Cross-entropy of the query labels (N×H×W) under the support-imprinted proxies."""
    logits = episode_logits(support, support_labels, query, scale, tuple(query_labels.shape[-2:]))
    return F.cross_entropy(logits, query_labels, ignore_index=IGNORE)
