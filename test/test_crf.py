"""Dense CRF refinement: a distribution per pixel, unary pass-through, real cleaning, and the
torch implementation against pydensecrf on the embedded clip's real frames."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from amp_ros.crf import BACKENDS, CrfConfig, FrameCrf, refine
from amp_ros.errors import InputError

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"


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


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("labels", [2, 3])
def test_output_is_a_distribution_per_pixel(labels: int, backend: str) -> None:
    """K×h×w float32 marginals that sum to 1 at every pixel."""
    probabilities = _random_probabilities(labels, 9, 13)
    frame = np.random.default_rng(1).integers(0, 256, (9, 13, 3), dtype=np.uint8)
    out = refine(probabilities, frame, CrfConfig(iterations=5, backend=backend))
    assert out.shape == (labels, 9, 13) and out.dtype == np.float32
    np.testing.assert_allclose(out.sum(0), 1.0, atol=1e-5)
    assert (out >= 0).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_zero_iterations_returns_the_unary_softmax(backend: str) -> None:
    """0 iterations return softmax(−unary) = the input (clipped at 1e-5)."""
    probabilities = _random_probabilities(2, 5, 7)
    out = refine(probabilities, np.zeros((5, 7, 3), np.uint8), CrfConfig(iterations=0, backend=backend))
    np.testing.assert_allclose(out, probabilities, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_salt_noise_is_cleaned_along_a_colour_edge(backend: str) -> None:
    """Confident halves with one wrong pixel on each side (0.7 the wrong way): both flip back."""
    frame, foreground = _two_halves()
    foreground[5, 3] = 0.7  # object speck in the black background
    foreground[12, 15] = 0.3  # background speck in the white object
    probabilities = np.stack([1 - foreground, foreground])
    out = refine(probabilities, frame, CrfConfig(backend=backend))
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
    with pytest.raises(InputError, match="unknown CRF backend 'opencv'"):
        refine(probabilities, np.zeros((4, 4, 3), np.uint8), CrfConfig(backend="opencv"))


def _demo_cases(step: int = 6) -> list[tuple[np.ndarray, np.ndarray]]:
    """Real frames of the embedded clip at 320×180 with a plausible, imperfect object
    probability: the ground-truth mask blurred, squeezed into [0.1, 0.9] and noised."""
    rng = np.random.default_rng(0)
    frames = sorted((DEMO / "JPEGImages").rglob("*.jpg"))[::step]
    masks = sorted((DEMO / "Annotations").rglob("*.png"))[::step]
    assert frames and len(frames) == len(masks)
    cases = []
    for frame_path, mask_path in zip(frames, masks):
        frame = cv2.resize(cv2.cvtColor(cv2.imread(str(frame_path)), cv2.COLOR_BGR2RGB), (320, 180),
                           interpolation=cv2.INTER_AREA)
        truth = cv2.resize((cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE) > 0).astype(np.float32),
                           (320, 180), interpolation=cv2.INTER_AREA)
        noisy = cv2.GaussianBlur(truth, (0, 0), 6) * 0.8 + 0.1 + rng.normal(0, 0.15, truth.shape)
        foreground = np.clip(noisy, 0.01, 0.99).astype(np.float32)
        cases.append((frame, np.stack([1 - foreground, foreground])))
    return cases


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def test_torch_backend_equals_pydensecrf_on_real_frames() -> None:
    """With the default kernels (the smoothness kernel narrower than a pixel) the torch
    mean field is the same computation as pydensecrf's: marginals within 1e-3, same masks."""
    config = CrfConfig()
    for frame, probabilities in _demo_cases():
        reference = refine(probabilities, frame, replace(config, backend="pydensecrf"), 180 / 480)
        ours = refine(probabilities, frame, config, 180 / 480)
        assert np.abs(ours - reference).max() < 1e-3
        assert np.array_equal(ours[1] > 0.5, reference[1] > 0.5)
        assert _iou(reference[1] > 0.5, probabilities[1] > 0.5) < 0.99  # the CRF did change the mask


def test_torch_backend_with_a_wide_smoothness_kernel_agrees_with_pydensecrf() -> None:
    """A smoothness kernel of several pixels: torch convolves with the exact Gaussian, pydensecrf
    approximates it on its lattice; the masks still agree (IoU >= 0.99 on every frame)."""
    config = CrfConfig(gaussian_sxy=8.0)
    for frame, probabilities in _demo_cases(step=10):
        reference = refine(probabilities, frame, replace(config, backend="pydensecrf"), 180 / 480)
        ours = refine(probabilities, frame, config, 180 / 480)
        assert _iou(ours[1] > 0.5, reference[1] > 0.5) >= 0.99


def test_one_frame_crf_refines_several_maps_like_separate_calls() -> None:
    """FrameCrf builds the frame's kernels once: each map it refines equals a one-off refine."""
    (frame, first), (_, second) = _demo_cases(step=15)[:2]
    crf = FrameCrf(frame, CrfConfig(), 180 / 480)
    for probabilities in (first, second, first):
        np.testing.assert_array_equal(crf.refine(probabilities),
                                      refine(probabilities, frame, CrfConfig(), 180 / 480))


def test_kernels_built_in_a_worker_thread_refine_alike() -> None:
    """With an executor the kernels are built in its thread (as the pipeline does while the
    network runs): the refined maps are exactly those of a CRF that builds them itself."""
    (frame, first), (_, second) = _demo_cases(step=15)[:2]
    threads = []

    def build_here(build):  # the executor's thread records itself, then builds
        threads.append(threading.current_thread())
        return build()

    with ThreadPoolExecutor(max_workers=1) as worker:
        recording = SimpleNamespace(submit=lambda build: worker.submit(build_here, build))
        crf = FrameCrf(frame, CrfConfig(), 180 / 480, executor=recording)
        for probabilities in (first, second):
            np.testing.assert_array_equal(crf.refine(probabilities),
                                          refine(probabilities, frame, CrfConfig(), 180 / 480))
    assert len(threads) == 1 and threads[0] is not threading.current_thread()  # built once, there
