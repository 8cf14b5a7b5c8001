"""NMAP (AMP eq. 1) and the adaptive blend (eq. 2) against hand-computed numbers."""

from __future__ import annotations

import pytest
import torch

from amp_ros.errors import EmptyMaskError, InputError
from amp_ros.proxies import IGNORE, blend, nmap

# C=2 features on a 2×2 grid: channel 0 and channel 1, rows top to bottom.
FEATURES = torch.tensor(
    [
        [[1.0, 2.0], [3.0, 4.0]],
        [[4.0, 0.0], [0.0, 2.0]],
    ]
)


def test_nmap_hand_computed_one_shot() -> None:
    """Top row selected: mean (1.5, 2), ‖·‖ = 2.5, so P̂ = (0.6, 0.8)."""
    mask = torch.tensor([[1, 1], [0, 0]])
    assert torch.equal(nmap(FEATURES, mask), torch.tensor([0.6, 0.8]))


def test_nmap_accepts_bool_masks_and_batched_shapes() -> None:
    """A bool mask and the K×… form with K=1 give the same proxy as a 0/1 mask."""
    mask = torch.tensor([[True, True], [False, False]])
    assert torch.equal(nmap(FEATURES[None], mask[None]), torch.tensor([0.6, 0.8]))


def test_nmap_k_shot_means_per_shot_then_over_shots() -> None:
    """Shot means (3, 0) and (0, 4) average to (1.5, 2) → (0.6, 0.8).

    Pooling all 4 selected pixels together would give (3, 12)/4 = (0.75, 3), whose direction
    (0.2425…, 0.9701…) is different: each shot counts once, whatever its area.
    """
    features = torch.tensor(
        [
            [[[3.0, 9.0], [9.0, 9.0]], [[0.0, 9.0], [9.0, 9.0]]],  # shot 1: only (0,0) selected
            [[[9.0, 0.0], [0.0, 0.0]], [[9.0, 4.0], [4.0, 4.0]]],  # shot 2: three pixels (0, 4)
        ]
    )
    masks = torch.tensor([[[1, 0], [0, 0]], [[0, 1], [1, 1]]])
    proxy = nmap(features, masks)
    assert torch.equal(proxy, torch.tensor([0.6, 0.8]))
    pooled = torch.tensor([0.75, 3.0])
    assert not torch.allclose(proxy, pooled / pooled.norm(), atol=1e-2)


def test_nmap_ignore_pixels_excluded_by_mapping_labels() -> None:
    """Labels 0/1/255: the documented pattern ``labels == 1`` keeps 255 out of the proxy.

    Class 1 = top-left only → (1, 4)/√17; the ignored top-right pixel (2, 0) does not count.
    """
    labels = torch.tensor([[1, IGNORE], [0, 0]], dtype=torch.uint8)
    expected = torch.tensor([1.0, 4.0]) / torch.tensor(17.0).sqrt()
    torch.testing.assert_close(nmap(FEATURES, labels == 1), expected, rtol=0, atol=1e-7)
    # Background = bottom row: mean (3.5, 1) — again without the ignored pixel.
    background = torch.tensor([3.5, 1.0])
    torch.testing.assert_close(nmap(FEATURES, labels == 0), background / background.norm(), rtol=0, atol=1e-7)


def test_nmap_rejects_raw_labels_with_ignore() -> None:
    """Passing 0/1/255 labels directly is an error, not a silent 255-weighted mean."""
    labels = torch.tensor([[1, IGNORE], [0, 0]], dtype=torch.uint8)
    with pytest.raises(InputError, match=r"masks must be binary .*map ignore pixels to 0 first"):
        nmap(FEATURES, labels)


def test_nmap_area_weights_when_mask_is_larger_than_features() -> None:
    """A 4×4 mask over 2×2 features: each cell weighted by the fraction it covers.

    Covered: top-left cell 4/4, top-right 1/4, bottom-left 2/4, bottom-right 0/4 (7 pixels).
    Sum: ch0 = 1·1 + 2·¼ + 3·½ = 3, ch1 = 4·1 = 4, weights 1.75 → mean (3, 4)/1.75 → (0.6, 0.8).
    Same as pooling the 7 label pixels over nearest-upsampled features: (1·4+2+3·2, 4·4)/7.
    """
    mask = torch.tensor(
        [
            [1, 1, 1, 0],
            [1, 1, 0, 0],
            [1, 0, 0, 0],
            [1, 0, 0, 0],
        ]
    )
    torch.testing.assert_close(nmap(FEATURES, mask), torch.tensor([0.6, 0.8]), rtol=0, atol=1e-7)


def test_nmap_unequal_cells_change_the_answer() -> None:
    """Area weights matter: the same cells with full weight would give (6, 4)/√52 instead."""
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0]])
    unweighted = torch.tensor([6.0, 4.0]) / torch.tensor(52.0).sqrt()
    assert not torch.allclose(nmap(FEATURES, mask), unweighted, atol=1e-2)


def test_nmap_empty_mask_raises_with_the_shot() -> None:
    """No pixel → EmptyMaskError naming the empty shot; never a NaN proxy."""
    with pytest.raises(EmptyMaskError, match=r"mask of shot\(s\) \[0\] selects no pixel"):
        nmap(FEATURES, torch.zeros(2, 2))
    masks = torch.tensor([[[1, 0], [0, 0]], [[0, 0], [0, 0]]])
    with pytest.raises(EmptyMaskError, match=r"shot\(s\) \[1\]"):
        nmap(torch.stack([FEATURES, FEATURES]), masks)


def test_nmap_zero_or_nan_features_raise_instead_of_nan() -> None:
    """Masked features that are all zero or not finite give an error, not NaN."""
    mask = torch.tensor([[1, 0], [0, 0]])
    with pytest.raises(InputError, match="all zero or not finite"):
        nmap(torch.zeros(2, 2, 2), mask)
    features = FEATURES.clone()
    features[0, 0, 0] = float("nan")
    with pytest.raises(InputError, match="all zero or not finite"):
        nmap(features, mask)


def test_nmap_shape_errors() -> None:
    """Wrong ranks and shot counts are reported with both shapes."""
    with pytest.raises(InputError, match=r"features K×C×h×w and masks K×H×W, got \(2,\) and"):
        nmap(torch.ones(2), torch.ones(2, 2))
    with pytest.raises(InputError, match="got 1 feature maps but 2 masks"):
        nmap(FEATURES, torch.ones(2, 2, 2))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_nmap_dtypes(dtype: torch.dtype) -> None:
    """float32 and float64 features give the same unit proxy in their own dtype."""
    proxy = nmap(FEATURES.to(dtype), torch.tensor([[1, 1], [0, 0]]))
    assert proxy.dtype == dtype
    assert torch.equal(proxy, torch.tensor([0.6, 0.8], dtype=dtype))
    assert torch.equal(proxy.norm(), torch.tensor(1.0, dtype=dtype))


def test_blend_alpha_zero_and_one() -> None:
    """α=0 returns W unchanged (a copy); α=1 returns P̂."""
    weight, proxy = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    kept = blend(weight, proxy, 0.0)
    assert torch.equal(kept, weight) and kept is not weight
    assert torch.equal(blend(weight, proxy, 1.0), proxy)


def test_blend_hand_computed() -> None:
    """α=0.5 between (1, 0) and (0, 1): (0.5, 0.5) re-normalised to (1/√2, 1/√2)."""
    mixed = blend(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]), 0.5)
    torch.testing.assert_close(mixed, torch.full((2,), 0.5**0.5), rtol=0, atol=1e-7)


def test_blend_errors() -> None:
    """α out of range, shape mismatch and a zero blend (opposite vectors) are errors, not NaN."""
    weight = torch.tensor([1.0, 0.0])
    with pytest.raises(InputError, match=r"alpha must lie in \[0, 1\], got 1.5"):
        blend(weight, weight, 1.5)
    with pytest.raises(InputError, match=r"proxy shape \(3,\) differs from weight \(2,\)"):
        blend(weight, torch.ones(3), 0.5)
    with pytest.raises(InputError, match="blended weight is zero"):
        blend(weight, -weight, 0.5)
