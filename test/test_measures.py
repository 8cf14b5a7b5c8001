"""DAVIS-2016 measures: exact, hand-checked values of J, F, boundaries, tolerance and statistics."""

from __future__ import annotations

import numpy as np
import pytest

from amp_ros.errors import InputError
from amp_ros.evaluation.measures import (
    boundary_f,
    boundary_tolerance,
    decay_bins,
    disk,
    jaccard,
    region_precision_recall,
    seg2bmap,
    sequence_statistics,
)


def _mask(h: int, w: int, *pixels: tuple[int, int]) -> np.ndarray:
    """H×W bool mask with the given (row, col) pixels set."""
    m = np.zeros((h, w), bool)
    for y, x in pixels:
        m[y, x] = True
    return m


def _left_of(h: int, w: int, c: int) -> np.ndarray:
    """H×W mask of every pixel left of column c (a vertical edge between c-1 and c)."""
    m = np.zeros((h, w), bool)
    m[:, :c] = True
    return m


# --- J ----------------------------------------------------------------------------------------


def test_jaccard_hand_made() -> None:
    gt = np.zeros((4, 4), bool)
    gt[1:3, 1:3] = True  # 4 px
    pred = np.zeros((4, 4), bool)
    pred[1:3, 1:4] = True  # 6 px, 4 shared
    assert jaccard(pred, gt) == pytest.approx(4 / 6)
    assert jaccard(gt, gt) == 1.0


def test_jaccard_accepts_0_255_masks() -> None:
    gt = np.zeros((3, 3), np.uint8)
    gt[0, :] = 255
    pred = np.zeros((3, 3), np.uint8)
    pred[0, :2] = 1
    assert jaccard(pred, gt) == pytest.approx(2 / 3)


def test_both_empty_scores_one() -> None:
    empty = np.zeros((5, 6), bool)
    assert jaccard(empty, empty) == 1.0
    assert boundary_f(empty, empty) == 1.0


def test_one_empty_scores_zero() -> None:
    empty = np.zeros((5, 6), bool)
    obj = _mask(5, 6, (2, 2))
    for pred, gt in ((empty, obj), (obj, empty)):
        assert jaccard(pred, gt) == 0.0
        assert boundary_f(pred, gt) == 0.0


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(InputError, match=r"854×480 \(W×H\) but the ground truth is 853×480"):
        jaccard(np.zeros((480, 854)), np.zeros((480, 853)))
    with pytest.raises(InputError, match="two H×W masks"):
        boundary_f(np.zeros((4, 4, 3)), np.zeros((4, 4, 3)))


# --- boundaries -------------------------------------------------------------------------------


def test_seg2bmap_one_pixel_object() -> None:
    # A pixel differs from its right, bottom or bottom-right neighbour: the object pixel itself
    # and the three pixels above/left of it whose neighbour it is.
    bmap = seg2bmap(_mask(5, 5, (2, 2)))
    assert bmap.tolist() == _mask(5, 5, (1, 1), (1, 2), (2, 1), (2, 2)).tolist()


def test_seg2bmap_ignores_neighbours_outside_the_image() -> None:
    # Bottom-right corner pixel: it has no neighbour to compare with, so it is no boundary.
    bmap = seg2bmap(_mask(4, 4, (3, 3)))
    assert bmap.tolist() == _mask(4, 4, (2, 2), (2, 3), (3, 2)).tolist()
    # A mask that fills the image has no boundary at the image border.
    full = np.ones((4, 5), bool)
    assert not seg2bmap(full).any()
    assert boundary_f(full, full) == 1.0


def test_seg2bmap_vertical_edge() -> None:
    bmap = seg2bmap(_left_of(4, 6, 3))
    expected = np.zeros((4, 6), bool)
    expected[:, 2] = True
    assert bmap.tolist() == expected.tolist()


def test_one_pixel_objects() -> None:
    a = _mask(5, 5, (2, 2))
    b = _mask(5, 5, (2, 3))
    assert jaccard(a, a) == 1.0
    assert boundary_f(a, a) == 1.0
    assert jaccard(a, b) == 0.0
    # 5×5 image: radius ceil(0.008·√50) = 1; the 2×2 boundary blocks are 1 column apart.
    assert boundary_tolerance(a.shape) == 1
    assert boundary_f(a, b) == 1.0
    far = _mask(5, 5, (4, 0))  # boundary (3,0),(4,0): nearest is diagonal, √2 > 1 away
    assert boundary_f(a, far) == 0.0


def test_disk_is_exactly_the_offsets_within_the_radius() -> None:
    assert disk(0).tolist() == [[1]]
    assert disk(1).tolist() == [[0, 1, 0], [1, 1, 1], [0, 1, 0]]
    assert disk(2).tolist() == [
        [0, 0, 1, 0, 0],
        [0, 1, 1, 1, 0],
        [1, 1, 1, 1, 1],
        [0, 1, 1, 1, 0],
        [0, 0, 1, 0, 0],
    ]
    # (dy, dx) = (3, 4) lies at distance exactly 5.
    assert disk(5)[5 + 3, 5 + 4] == 1
    assert disk(4).shape == (9, 9)
    assert disk(8).sum() == sum(
        1 for dy in range(-8, 9) for dx in range(-8, 9) if dx * dx + dy * dy <= 64
    )


def test_bound_th_for_davis_resolutions() -> None:
    assert boundary_tolerance((480, 854)) == 8  # ceil(0.008 · 979.65) = ceil(7.84)
    assert boundary_tolerance((1080, 1920)) == 18  # ceil(17.62)
    assert boundary_tolerance((480, 854), bound_th=3) == 3  # ≥ 1 means pixels


@pytest.mark.parametrize(("shift", "expected"), [(0, 1.0), (7, 1.0), (8, 1.0), (9, 0.0)])
def test_boundary_tolerance_is_exact_at_854x480(shift: int, expected: float) -> None:
    # Every boundary pixel of one mask is exactly `shift` px from the other's (same row).
    gt = _left_of(480, 854, 400)
    pred = _left_of(480, 854, 400 + shift)
    assert boundary_f(pred, gt) == expected
    assert boundary_f(gt, pred) == expected


@pytest.mark.parametrize(("shift", "expected"), [(3, 1.0), (4, 0.0)])
def test_boundary_tolerance_in_pixels(shift: int, expected: float) -> None:
    gt = _left_of(20, 30, 10)
    pred = _left_of(20, 30, 10 + shift)
    assert boundary_f(pred, gt, bound_th=3) == expected


def test_boundary_f_partial_match() -> None:
    # gt boundary: column 4 (20 px). pred adds a far one-pixel blob: its 2×2 boundary block is
    # unmatched, so precision = 20/24, recall = 1 and F = 2·(5/6)/(5/6 + 1) = 10/11.
    gt = _left_of(20, 20, 5)
    pred = gt.copy()
    pred[10, 15] = True
    assert boundary_f(pred, gt, bound_th=1) == pytest.approx(10 / 11)


def test_boundary_f_matches_brute_force_definition() -> None:
    # Matching by cv2.dilate with the disk equals matching by Euclidean distance ≤ r.
    rng = np.random.default_rng(0)
    for radius in (1, 2, 3):
        gt = rng.random((24, 31)) > 0.6
        pred = rng.random((24, 31)) > 0.6
        pb, gb = np.argwhere(seg2bmap(pred)), np.argwhere(seg2bmap(gt))

        def matched(a: np.ndarray, b: np.ndarray, r: int = radius) -> float:
            d2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
            return float((d2 <= r * r).any(1).mean())

        p, r = matched(pb, gb), matched(gb, pb)
        assert boundary_f(pred, gt, bound_th=radius) == pytest.approx(2 * p * r / (p + r))


# --- region precision / recall (FBMS) ---------------------------------------------------------


def test_region_precision_recall() -> None:
    gt = np.zeros((4, 4), bool)
    gt[:2, :] = True  # 8 px
    pred = np.zeros((4, 4), bool)
    pred[1:3, :2] = True  # 4 px, 2 inside gt
    assert region_precision_recall(pred, gt) == (0.5, 0.25)
    empty = np.zeros((4, 4), bool)
    assert region_precision_recall(empty, empty) == (1.0, 1.0)
    assert region_precision_recall(empty, gt) == (1.0, 0.0)
    assert region_precision_recall(gt, empty) == (0.0, 1.0)


# --- statistics -------------------------------------------------------------------------------


def _davis_toolkit_bins(length: int) -> list[tuple[int, int]]:
    """Bins as the DAVIS toolkit computes them (floating-point round with a 1e-10 nudge)."""
    ids = (np.round(np.linspace(1, length, 5) + 1e-10) - 1).astype(int)
    return [(int(ids[i]), int(ids[i + 1]) + 1) for i in range(4)]


def test_decay_bins_hand_computed() -> None:
    # L=4: linspace(1,4,5) = 1, 1.75, 2.5, 3.25, 4 → round (halves up) 1,2,3,3,4 → ids 0,1,2,2,3
    assert decay_bins(4) == [(0, 2), (1, 3), (2, 3), (2, 4)]
    # L=5: 1,2,3,4,5 → ids 0,1,2,3,4
    assert decay_bins(5) == [(0, 2), (1, 3), (2, 4), (3, 5)]
    # L=7: 1, 2.5, 4, 5.5, 7 → 1,3,4,6,7 → ids 0,2,3,5,6
    assert decay_bins(7) == [(0, 3), (2, 4), (3, 6), (5, 7)]
    # short sequences: the bins overlap but are never empty
    assert decay_bins(1) == [(0, 1)] * 4
    assert decay_bins(2) == [(0, 1), (0, 2), (1, 2), (1, 2)]
    assert decay_bins(3) == [(0, 2), (1, 2), (1, 3), (2, 3)]


def test_decay_bins_match_the_toolkit_formula() -> None:
    for length in range(1, 301):
        assert decay_bins(length) == _davis_toolkit_bins(length), length


@pytest.mark.parametrize(
    ("values", "decay"),
    [
        ([1.0, 0.8, 0.6, 0.2], 0.9 - 0.4),  # mean(v0, v1) - mean(v2, v3)
        ([1.0, 0.9, 0.5, 0.3, 0.1], 0.95 - 0.2),  # mean(v0, v1) - mean(v3, v4)
        ([0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1], 0.6 - 0.15),  # mean(v0..v2) - mean(v5, v6)
        ([0.9], 0.0),
        ([0.9, 0.4], 0.5),
        ([0.9, 0.5, 0.4], 0.3),  # mean(v0, v1) - v2
    ],
)
def test_decay(values: list[float], decay: float) -> None:
    stats = sequence_statistics(values)
    assert stats.decay == pytest.approx(decay)
    assert stats.mean == pytest.approx(sum(values) / len(values))


def test_recall_threshold_is_strict() -> None:
    stats = sequence_statistics([0.5, 0.5, 0.5000001, 1.0])
    assert stats.recall == 0.5


def test_statistics_reject_empty_and_nan() -> None:
    with pytest.raises(InputError, match="non-empty"):
        sequence_statistics([])
    with pytest.raises(InputError, match="finite"):
        sequence_statistics([0.5, float("nan")])
