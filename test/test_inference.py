"""inference: frame + flow at the processing size in, head features out; logits of a proxy set."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from amp_ros.checkpoint import Checkpoint, InputConfig, load_checkpoint
from amp_ros.errors import InputError
from amp_ros.inference import (
    check_frame,
    class_logits,
    internal_size,
    predict,
    shrink_frame,
    to_tensor,
    upsample,
)


@pytest.fixture(scope="module")
def tiny(tiny_checkpoint: Path) -> Checkpoint:
    return load_checkpoint(tiny_checkpoint)


def _zero_flow(frame: np.ndarray) -> np.ndarray:
    return np.zeros((*frame.shape[:2], 2), np.float32)


@pytest.mark.parametrize("size", [(1, 1), (7, 5), (17, 33)])
def test_predict_and_class_logits(
    tiny: Checkpoint, make_frame: Callable[..., np.ndarray], size: tuple[int, int]
) -> None:
    """Features per head level; K×h×w logits of the checkpoint's classes, softmax sums to 1."""
    frame = make_frame(*size)
    flow = np.random.default_rng(0).normal(size=(*size, 2)).astype(np.float32)
    features = predict(tiny.network, frame, flow, tiny.input)
    assert features.size == size
    assert features.frame is frame
    assert [f.shape[0] for f in features.features] == [16, 32, 32]
    logits = class_logits(features, tiny.proxies, tiny.scale)
    assert logits.shape == (2, *size) and logits.dtype == torch.float32
    torch.testing.assert_close(torch.softmax(logits, dim=0).sum(0), torch.ones(size))


def test_shrunk_frames_and_upsample_restores_size(
    tiny: Checkpoint, make_frame: Callable[..., np.ndarray]
) -> None:
    """A 96×80 frame with max_side 64 is shrunk to 64×53; upsample gives 96×80 back."""
    frame = shrink_frame(make_frame(96, 80), tiny.input.max_side)
    assert frame.shape == (64, 53, 3)
    features = predict(tiny.network, frame, _zero_flow(frame), tiny.input)
    logits = class_logits(features, tiny.proxies, tiny.scale)
    assert logits.shape == (2, 64, 53)
    probabilities = upsample(torch.softmax(logits, 0), (96, 80))
    assert probabilities.shape == (2, 96, 80)
    torch.testing.assert_close(probabilities.sum(0), torch.ones(96, 80))


def test_predict_is_deterministic(tiny: Checkpoint, make_frame: Callable[..., np.ndarray]) -> None:
    """Same frame and flow, same features, bit for bit."""
    frame = make_frame(12, 20)
    flow = np.ones((12, 20, 2), np.float32)
    first = predict(tiny.network, frame, flow, tiny.input)
    second = predict(tiny.network, frame, flow, tiny.input)
    assert all(torch.equal(a, b) for a, b in zip(first.features, second.features))


@pytest.mark.parametrize(
    "frame",
    [
        np.zeros((4, 4), np.uint8),
        np.zeros((4, 4, 4), np.uint8),
        np.zeros((4, 4, 3), np.float32),
        np.zeros((0, 4, 3), np.uint8),
    ],
)
def test_check_frame_rejects(frame: np.ndarray) -> None:
    """Only non-empty H×W×3 uint8 frames pass."""
    with pytest.raises(InputError, match="frame"):
        check_frame(frame)


def test_check_frame_message() -> None:
    """The message states the expected layout and what came."""
    with pytest.raises(InputError, match=r"H×W×3 uint8 RGB array, got float32 \(4, 4, 3\)"):
        check_frame(np.zeros((4, 4, 3), np.float32))


def test_internal_size() -> None:
    """The longer side is scaled to max_side at most (rounded); never below 1 px."""
    assert internal_size(480, 854, 320) == (180, 320)
    assert internal_size(854, 480, 320) == (320, 180)
    assert internal_size(100, 50, 320) == (100, 50)
    assert internal_size(1, 1000, 64) == (1, 64)


def test_to_tensor_normalisation() -> None:
    """uint8 → [0, 1] → (x − mean)/std per channel, 1×3×H×W."""
    config = InputConfig(mean=(0.5, 0.0, 1.0), std=(0.5, 1.0, 0.25))
    rgb = np.array([[[255, 0, 255]]], np.uint8)
    tensor = to_tensor(rgb, config)
    assert tensor.shape == (1, 3, 1, 1)
    assert tensor.flatten().tolist() == [1.0, 0.0, 0.0]


def test_upsample_same_size_is_identity() -> None:
    """No resampling when the size already matches."""
    maps = torch.rand(2, 3, 4)
    assert upsample(maps, (3, 4)) is maps
