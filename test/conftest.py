"""Shared fixtures: a tiny checkpoint on disk, a fresh pipeline on it, textured frames.

Generic on purpose: the core tests, the node tests and the bag tests all use them. Everything is
sized for a 2-core CPU (a width-1/16 network with one unit per group: ≈77 k parameters).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from amp_ros.checkpoint import InputConfig, save_checkpoint
from amp_ros.network import build_heads, two_stream_network
from amp_ros.pipeline import Pipeline

TINY_MAX_SIDE = 64
"""Longer side at which the tiny checkpoint processes frames (larger frames are shrunk)."""


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder of a tiny, randomly initialised (seed 0) two-stream network checkpoint.

    Classes ("background", "object"), three head levels with 16, 32 and 32 channels,
    ``InputConfig(max_side=64)``. Read-only: load it (``load_checkpoint``/``Pipeline``) to use it.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        network = two_stream_network(width=0.0625, group_blocks=(1, 1, 1)).eval()
    directory = tmp_path_factory.mktemp("tiny_checkpoint")
    return save_checkpoint(directory, network, build_heads(network), InputConfig(max_side=TINY_MAX_SIDE),
                           {"seed": 0})


@pytest.fixture
def tiny_pipeline(tiny_checkpoint: Path) -> Pipeline:
    """A fresh pipeline (default PipelineConfig) on the tiny checkpoint, one per test."""
    return Pipeline.from_checkpoint(tiny_checkpoint)


@pytest.fixture
def make_frame() -> Callable[..., np.ndarray]:
    """Factory ``make_frame(height, width, seed=0, shift=(0, 0))`` → H×W×3 uint8 RGB texture.

    A smooth random texture (blurred noise, good for optical flow); ``shift=(dx, dy)`` moves
    the content by whole pixels, so frame ``shift=(dx, dy)`` follows frame ``(0, 0)`` with
    flow (dx, dy) away from the borders.
    """

    def make(height: int, width: int, seed: int = 0, shift: tuple[int, int] = (0, 0)) -> np.ndarray:
        margin = 16
        rng = np.random.default_rng(seed)
        noise = rng.integers(0, 256, (height + 2 * margin, width + 2 * margin, 3), dtype=np.uint8)
        texture = cv2.GaussianBlur(noise, (0, 0), 1.5)
        texture = cv2.normalize(texture, None, 0, 255, cv2.NORM_MINMAX)
        dx, dy = shift
        top, left = margin - dy, margin - dx
        return np.ascontiguousarray(texture[top : top + height, left : left + width])

    return make
