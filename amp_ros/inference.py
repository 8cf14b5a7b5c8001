"""One forward pass: frame + flow in, head features out; logits of a proxy set from them.

Shared by the pipeline (node, offline evaluation, demo) and by training, so every path feeds
the network exactly the same inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from amp_ros.checkpoint import InputConfig
from amp_ros.errors import InputError
from amp_ros.flow import render_motion
from amp_ros.network import TwoStreamNetwork
from amp_ros.proxy_set import ProxySet, cosine_logits


@dataclass
class FrameFeatures:
    """The network's view of one frame, at its internal (processing) size h×w.

    features: one C_l×h_l×w_l map per head level (unit vectors per pixel); frame: the h×w×3
    uint8 RGB frame the network saw (for the CRF).
    """

    features: list[torch.Tensor]
    frame: np.ndarray

    @property
    def size(self) -> tuple[int, int]:
        """Internal size (h, w)."""
        return self.frame.shape[0], self.frame.shape[1]


def check_frame(frame: np.ndarray) -> np.ndarray:
    """Validate an H×W×3 uint8 RGB frame."""
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise InputError(f"frame must be an H×W×3 uint8 RGB array, got {frame.dtype} {frame.shape}")
    if frame.shape[0] < 1 or frame.shape[1] < 1:
        raise InputError(f"frame has no pixels: {frame.shape}")
    return frame


def internal_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    """Processing size: the frame scaled down so its longer side is at most ``max_side``."""
    scale = min(1.0, max_side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def shrink_frame(frame: np.ndarray, max_side: int) -> np.ndarray:
    """An H×W×3 frame area-resized to the internal size (unchanged when already small enough)."""
    height, width = frame.shape[:2]
    h, w = internal_size(height, width, max_side)
    if (h, w) == (height, width):
        return frame
    return cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)


def to_tensor(rgb: np.ndarray, config: InputConfig) -> torch.Tensor:
    """H×W×3 uint8 → 1×3×H×W float32, scaled to [0, 1] then mean/std normalised."""
    tensor = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div_(255.0)
    mean = torch.tensor(config.mean).view(3, 1, 1)
    std = torch.tensor(config.std).view(3, 1, 1)
    return ((tensor - mean) / std).unsqueeze(0)


@torch.no_grad()
def predict(
    network: TwoStreamNetwork, frame: np.ndarray, flow: np.ndarray, config: InputConfig
) -> FrameFeatures:
    """Run the network on one frame at the processing size and its flow.

    frame: h×w×3 uint8 RGB, already shrunk (:func:`shrink_frame`); flow: h×w×2 float32 pixel
    displacements at the same size. Callers validate at their public entry (the pipeline
    checks frames and flow once, training reads its own data), so nothing is checked twice.
    """
    device = next(network.parameters()).device
    # channels-last inputs (and a channels-last network, as the pipeline keeps it): the faster
    # convolution layout on CPUs and GPUs alike
    image = to_tensor(frame, config).to(device, memory_format=torch.channels_last)
    motion = to_tensor(render_motion(flow, config.motion), config)
    motion = motion.to(device, memory_format=torch.channels_last)
    features = network(image, motion)
    return FrameFeatures(features=[f[0].float().cpu().contiguous() for f in features], frame=frame)


def class_logits(
    frame: FrameFeatures, proxies: ProxySet, scale: torch.Tensor | float, levels: Sequence[int] | None = None
) -> torch.Tensor:
    """K×h×w logits of the classes in ``proxies`` at the frame's processing size."""
    features = [f[None] for f in frame.features]
    return cosine_logits(features, proxies, scale, frame.size, levels)[0]


def upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinearly resize K×h×w maps to K×H×W."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps[None], size=size, mode="bilinear", align_corners=False)[0]
