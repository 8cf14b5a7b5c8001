"""The permutohedral lattice filter: exact on configurations whose Gaussian sums are known."""

from __future__ import annotations

import pytest
import torch

from amp_ros.errors import InputError
from amp_ros.permutohedral import PermutohedralLattice


def _normalised(lattice: PermutohedralLattice, values: torch.Tensor) -> torch.Tensor:
    """n·K(n·v) with n = (K·1)^(-1/2), the dense CRF's symmetric normalisation."""
    norm = lattice.filter(torch.ones(1, values.shape[1])).rsqrt()
    return norm * lattice.filter(norm * values)


@pytest.mark.parametrize("dimensions", [2, 5])
def test_points_far_apart_only_see_themselves(dimensions: int) -> None:
    """Points 100 standard deviations apart: the kernel between them is 0, so the normalised
    filter returns every value unchanged."""
    features = torch.arange(6, dtype=torch.float32)[:, None].repeat(1, dimensions) * 100.0
    values = torch.tensor([[3.0, -1.0, 0.5, 2.0, 0.0, 7.0]])
    assert torch.allclose(_normalised(PermutohedralLattice(features), values), values, atol=1e-6)


@pytest.mark.parametrize("dimensions", [2, 5])
def test_coincident_points_share_their_mean(dimensions: int) -> None:
    """Points with equal features: the kernel between any two is 1, so every normalised output
    is the mean of the values, (3 - 1 + 0.5 + 2.5) / 4 = 1.25."""
    features = torch.full((4, dimensions), 2.3)
    values = torch.tensor([[3.0, -1.0, 0.5, 2.5]])
    out = _normalised(PermutohedralLattice(features), values)
    assert torch.allclose(out, torch.full_like(values, 1.25), atol=1e-6)


def test_filters_each_row_alike() -> None:
    """K rows are filtered independently: two rows give what each gives alone."""
    features = torch.randn(50, 3, generator=torch.Generator().manual_seed(0))
    lattice = PermutohedralLattice(features)
    values = torch.randn(2, 50, generator=torch.Generator().manual_seed(1))
    both = lattice.filter(values)
    assert torch.allclose(both[0], lattice.filter(values[:1])[0])
    assert torch.allclose(both[1], lattice.filter(values[1:])[0])


def test_smooths_like_a_gaussian_in_two_dimensions() -> None:
    """A 2-D grid of points 0.5 σ apart: the normalised lattice filter of a smooth signal is within
    5 % of the exact normalised Gaussian filter (3.5 % measured: the lattice approximates)."""
    grid = torch.stack(torch.meshgrid(torch.arange(24.0), torch.arange(24.0), indexing="ij"), -1)
    features = grid.reshape(-1, 2) * 0.5
    values = torch.sin(features[:, 0] / 2.0)[None] + 2.0
    kernel = torch.exp(-torch.cdist(features, features) ** 2 / 2)
    norm = kernel.sum(1).rsqrt()
    exact = norm * ((norm * values) @ kernel)
    ours = _normalised(PermutohedralLattice(features), values)
    assert (ours / exact - 1).abs().max() < 0.05


def test_bad_features_are_refused() -> None:
    """Not N×d, or not finite: a clear InputError."""
    with pytest.raises(InputError, match="N×d"):
        PermutohedralLattice(torch.zeros(5))
    with pytest.raises(InputError, match="NaN or inf"):
        PermutohedralLattice(torch.tensor([[0.0, float("nan")]]))
