"""Dense CRF refinement: a distribution per pixel, unary pass-through, and real cleaning."""

from __future__ import annotations

import numpy as np
import pytest

from amp_ros.crf import CrfConfig, refine
from amp_ros.errors import InputError


def _random_probabilities(labels: int, height: int, width: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.dirichlet(np.ones(labels), size=(height, width)).transpose(2, 0, 1).astype(np.float32)


def _two_halves(height: int = 20, width: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Black left half, white right half; object probability 0.1 left, 0.9 right."""
    frame = np.zeros((height, width, 3), np.uint8)
    frame[:, width // 2 :] = 255
    right = np.arange(width)[None, :] >= width // 2
    foreground = np.where(right, 0.9, 0.1) * np.ones((height, 1))
    return frame, foreground.astype(np.float32)


@pytest.mark.parametrize("labels", [2, 3])
def test_output_is_a_distribution_per_pixel(labels: int) -> None:
    """K×h×w float32 marginals that sum to 1 at every pixel."""
    probabilities = _random_probabilities(labels, 9, 13)
    frame = np.random.default_rng(1).integers(0, 256, (9, 13, 3), dtype=np.uint8)
    out = refine(probabilities, frame, CrfConfig(iterations=5))
    assert out.shape == (labels, 9, 13) and out.dtype == np.float32
    np.testing.assert_allclose(out.sum(0), 1.0, atol=1e-5)
    assert (out >= 0).all()


def test_zero_iterations_returns_the_unary_softmax() -> None:
    """pydensecrf with 0 iterations returns softmax(−unary) = the input (clipped at 1e-5)."""
    probabilities = _random_probabilities(2, 5, 7)
    out = refine(probabilities, np.zeros((5, 7, 3), np.uint8), CrfConfig(iterations=0))
    np.testing.assert_allclose(out, probabilities, atol=1e-6)


def test_salt_noise_is_cleaned_along_a_colour_edge() -> None:
    """Confident halves with one wrong pixel on each side (0.7 the wrong way): both flip back."""
    frame, foreground = _two_halves()
    foreground[5, 3] = 0.7  # object speck in the black background
    foreground[12, 15] = 0.3  # background speck in the white object
    probabilities = np.stack([1 - foreground, foreground])
    out = refine(probabilities, frame, CrfConfig())
    assert out[1, 5, 3] < 0.5 < foreground[5, 3]
    assert out[1, 12, 15] > 0.5 > foreground[12, 15]
    truth = np.arange(20)[None, :] >= 10
    assert np.array_equal(out[1] > 0.5, np.broadcast_to(truth, (20, 20)))


def test_shape_and_iteration_errors() -> None:
    """Mismatched sizes and negative iterations are InputErrors with both shapes."""
    probabilities = _random_probabilities(2, 4, 4)
    with pytest.raises(InputError, match=r"got \(2, 4, 4\) and \(4, 5, 3\)"):
        refine(probabilities, np.zeros((4, 5, 3), np.uint8), CrfConfig())
    with pytest.raises(InputError, match="K×h×w probabilities"):
        refine(probabilities[0], np.zeros((4, 4, 3), np.uint8), CrfConfig())
    with pytest.raises(InputError, match="CRF iterations must be >= 0, got -1"):
        refine(probabilities, np.zeros((4, 4, 3), np.uint8), CrfConfig(iterations=-1))
