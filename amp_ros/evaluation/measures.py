"""DAVIS-2016 measures (J region similarity, F boundary accuracy) and their statistics.

Reimplemented from the definitions of Perazzi et al. (CVPR 2016) and the behaviour of the
official DAVIS-2016 toolkit, with numpy and OpenCV only:

- J: intersection over union; 1 when both masks are empty.
- F: boundary F-measure. Boundaries as in the toolkit's ``seg2bmap`` (a pixel is a boundary
  pixel when it differs from its right, bottom or bottom-right neighbour; neighbours outside the
  image are not compared), matched within a tolerance of ``ceil(0.008 · diagonal)`` pixels by
  dilating with a disk (the offsets with dx² + dy² ≤ r², as skimage's ``disk``).
- Statistics over a sequence: Mean, Recall (fraction of frames with a score strictly above 0.5)
  and Decay (mean of the first quarter minus mean of the last quarter, with the toolkit's
  overlapping bins from ``round(linspace(1, L, 5))``).

All masks are H×W arrays; any nonzero value is foreground.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from amp_ros.errors import InputError

DEFAULT_BOUND_TH = 0.008
"""Boundary tolerance of DAVIS as a fraction of the image diagonal (8 px at 854×480)."""

RECALL_THRESHOLD = 0.5
"""A frame counts towards Recall when its score is strictly above this."""


@dataclass(frozen=True)
class Stats:
    """Mean, Recall and Decay of one measure over one sequence (fractions, not percent)."""

    mean: float
    recall: float
    decay: float

    def to_dict(self) -> dict[str, float]:
        """Plain-float dict for JSON: {"mean", "recall", "decay"}."""
        return {"mean": self.mean, "recall": self.recall, "decay": self.decay}


@dataclass(frozen=True)
class RegionScores:
    """Foreground-pixel precision, recall and F-measure (the FBMS figures of the AMP paper)."""

    precision: float
    recall: float
    f: float

    def to_dict(self) -> dict[str, float]:
        """Plain-float dict for JSON: {"precision", "recall", "F"}."""
        return {"precision": self.precision, "recall": self.recall, "F": self.f}


def _binary_pair(pred: np.ndarray, gt: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Both masks as H×W bool, or InputError when their shapes differ or are not 2-D."""
    pred = np.asarray(pred)
    gt = np.asarray(gt)
    if pred.ndim != 2 or gt.ndim != 2:
        raise InputError(
            f"{what} expects two H×W masks, got shapes {pred.shape} and {gt.shape}"
        )
    if pred.shape != gt.shape:
        raise InputError(
            f"{what}: predicted mask is {pred.shape[1]}×{pred.shape[0]} (W×H) but the ground "
            f"truth is {gt.shape[1]}×{gt.shape[0]}"
        )
    return pred.astype(bool), gt.astype(bool)


def jaccard(pred: np.ndarray, gt: np.ndarray) -> float:
    """Region similarity J = |pred ∩ gt| / |pred ∪ gt| of two H×W masks; 1 when both are empty."""
    pred, gt = _binary_pair(pred, gt, "jaccard")
    union = int(np.count_nonzero(pred | gt))
    if union == 0:
        return 1.0
    return int(np.count_nonzero(pred & gt)) / union


def seg2bmap(mask: np.ndarray) -> np.ndarray:
    """One-pixel-wide boundary of an H×W mask (H×W bool), as DAVIS's ``seg2bmap``.

    A pixel is a boundary pixel when it differs from its right, bottom or bottom-right
    neighbour; neighbours outside the image are not compared (so the last row compares only to
    the right, the last column only downwards, and the bottom-right corner never is one).
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise InputError(f"seg2bmap expects an H×W mask, got shape {mask.shape}")
    seg = mask.astype(bool)
    bmap = np.zeros_like(seg)
    bmap[:, :-1] |= seg[:, :-1] != seg[:, 1:]
    bmap[:-1, :] |= seg[:-1, :] != seg[1:, :]
    bmap[:-1, :-1] |= seg[:-1, :-1] != seg[1:, 1:]
    return bmap


def disk(radius: int) -> np.ndarray:
    """(2r+1)×(2r+1) uint8 structuring element: exactly the offsets with dx² + dy² ≤ r²."""
    if radius < 0 or int(radius) != radius:
        raise InputError(f"disk radius must be a non-negative integer, got {radius}")
    r = int(radius)
    offsets = np.arange(-r, r + 1)
    return (offsets[:, None] ** 2 + offsets[None, :] ** 2 <= r * r).astype(np.uint8)


def boundary_tolerance(shape: tuple[int, ...], bound_th: float = DEFAULT_BOUND_TH) -> int:
    """Matching radius in pixels: ceil(bound_th · image diagonal), or bound_th itself if ≥ 1.

    shape: (H, W, ...). 854×480 with the default 0.008 gives 8.
    """
    if bound_th <= 0:
        raise InputError(f"bound_th must be positive, got {bound_th}")
    if bound_th >= 1:
        return math.ceil(bound_th)
    return math.ceil(bound_th * math.hypot(shape[0], shape[1]))


def boundary_f(pred: np.ndarray, gt: np.ndarray, bound_th: float = DEFAULT_BOUND_TH) -> float:
    """Boundary F-measure of two H×W masks with DAVIS's tolerance (see boundary_tolerance).

    1 when neither mask has a boundary, 0 when only one has.
    """
    pred, gt = _binary_pair(pred, gt, "boundary_f")
    pred_b = seg2bmap(pred)
    gt_b = seg2bmap(gt)
    n_pred = int(np.count_nonzero(pred_b))
    n_gt = int(np.count_nonzero(gt_b))
    if n_pred == 0 and n_gt == 0:
        return 1.0
    if n_pred == 0 or n_gt == 0:
        return 0.0
    kernel = disk(boundary_tolerance(gt.shape, bound_th))
    # cv2.dilate's default border never spreads from outside the image, like skimage's.
    pred_dil = cv2.dilate(pred_b.view(np.uint8), kernel).astype(bool)
    gt_dil = cv2.dilate(gt_b.view(np.uint8), kernel).astype(bool)
    precision = int(np.count_nonzero(pred_b & gt_dil)) / n_pred
    recall = int(np.count_nonzero(gt_b & pred_dil)) / n_gt
    if precision + recall == 0:
        return 0.0
    return 2.0 * precision * recall / (precision + recall)


def region_precision_recall(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    """Foreground-pixel precision |pred ∩ gt|/|pred| and recall |pred ∩ gt|/|gt| of H×W masks.

    Empty masks follow DAVIS's boundary convention: both empty → (1, 1); empty prediction only
    → (1, 0); empty ground truth only → (0, 1).
    """
    pred, gt = _binary_pair(pred, gt, "region_precision_recall")
    n_pred = int(np.count_nonzero(pred))
    n_gt = int(np.count_nonzero(gt))
    if n_pred == 0 and n_gt == 0:
        return 1.0, 1.0
    if n_pred == 0:
        return 1.0, 0.0
    if n_gt == 0:
        return 0.0, 1.0
    inter = int(np.count_nonzero(pred & gt))
    return inter / n_pred, inter / n_gt


def f_measure(precision: float, recall: float) -> float:
    """Harmonic mean 2PR/(P+R); 0 when both are 0."""
    if precision + recall == 0:
        return 0.0
    return 2.0 * precision * recall / (precision + recall)


def decay_bins(length: int) -> list[tuple[int, int]]:
    """The four [start, stop) index ranges DAVIS's Decay averages over, for `length` frames.

    Same as the toolkit's ``ids = round(linspace(1, L, 5)) - 1`` (halves rounded up) with bin i
    = ``values[ids[i] : ids[i+1] + 1]``: neighbouring bins share their edge frame, and for
    L < 4 they overlap further (L=1: every bin is frame 0). Computed in exact integer
    arithmetic (linspace(1, L, 5) takes values in steps of (L-1)/4, exact quarters).
    """
    if length < 1:
        raise InputError(f"decay needs at least one frame, got {length}")
    ids = [(k * (length - 1) + 6) // 4 - 1 for k in range(5)]
    return [(ids[i], ids[i + 1] + 1) for i in range(4)]


def sequence_statistics(values: Sequence[float]) -> Stats:
    """Mean, Recall (> 0.5) and Decay of per-frame scores of one sequence (L ≥ 1 values).

    The caller drops frames the protocol excludes (DAVIS: first and last). Short sequences use
    the toolkit's overlapping bins unchanged (see decay_bins), so every L ≥ 1 gives finite
    figures: L=1 → decay 0, L=2 → v0 − v1, L=3 → mean(v0, v1) − v2. An empty list or a
    non-finite score raises InputError; no NaN is ever returned.
    """
    scores = np.asarray(values, dtype=np.float64)
    if scores.ndim != 1 or scores.size == 0:
        raise InputError(
            f"sequence_statistics needs a non-empty list of per-frame scores, got shape "
            f"{scores.shape}"
        )
    if not np.all(np.isfinite(scores)):
        raise InputError("per-frame scores must be finite, got NaN or infinity")
    bins = decay_bins(scores.size)
    first = scores[bins[0][0] : bins[0][1]].mean()
    last = scores[bins[3][0] : bins[3][1]].mean()
    return Stats(
        mean=float(scores.mean()),
        recall=float(np.mean(scores > RECALL_THRESHOLD)),
        decay=float(first - last),
    )
