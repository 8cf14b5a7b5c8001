"""The two-stream network of AMP/MotAdapt (paper §3.4), read top to bottom.

Appearance (RGB frame) and motion (flow rendered as colour) streams: the paper's Wide-ResNet
topology (a 3×3 conv, then pre-activation residual units in three groups, widths 128→256→512 ×
``width``, a stride-2 unit at each change, output stride 8), or for appearance a pretrained
network: an ImageNet EfficientNet-Lite0, or the U²-Net(p) salient-object network. Their
features are fused by element-wise multiplication at every group and a shared dilated trunk
follows. The network is stateless: it returns the features of the head levels (stride 4,
stride 8, the trunk), and the classes live in a proxy set outside it
(:mod:`amp_ros.proxy_set`; :mod:`amp_ros.heads` in training).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from amp_ros.heads import ProxyHeads


@dataclass(frozen=True)
class NetworkConfig:
    """Architecture of a two-stream network and its heads; stored in every checkpoint's config."""

    width: float = 1.0
    appearance: str = "wrn"  # one of APPEARANCES: the paper's WRN, or a pretrained network
    fusion: str = "product"  # one of FUSIONS: how the two streams' features are combined
    stem_channels: int = 64
    group_channels: tuple[int, int, int] = (128, 256, 512)
    group_blocks: tuple[int, int, int] = (3, 4, 4)
    trunk_dilations: tuple[int, ...] = (2, 4)
    head_levels: tuple[str, ...] = ("stride4", "stride8", "trunk")
    class_names: tuple[str, ...] = ("background", "object")
    scale: float = 10.0

    def channels(self, base: int) -> int:
        """A base width scaled by the width multiplier (at least 8 channels)."""
        return max(8, int(round(base * self.width)))

    def to_dict(self) -> dict:
        """JSON-ready dict (tuples become lists)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> NetworkConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown network config keys: {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


class PreActUnit(nn.Module):
    """Pre-activation residual unit: (BN-ReLU-conv3×3) twice, plus a 1×1 projection if needed."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, padding=dilation, dilation=dilation, bias=False)
        self.shortcut = (
            nn.Conv2d(in_ch, out_ch, 1, stride, bias=False)
            if stride != 1 or in_ch != out_ch
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = F.relu(self.bn1(x))
        skip = x if self.shortcut is None else self.shortcut(pre)
        out = self.conv1(pre)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + skip


def _group(in_ch: int, out_ch: int, blocks: int, stride: int) -> nn.Sequential:
    units = [PreActUnit(in_ch, out_ch, stride)]
    units += [PreActUnit(out_ch, out_ch) for _ in range(blocks - 1)]
    return nn.Sequential(*units)


class Stream(nn.Module):
    """One WRN stream: 3×3 conv, then three groups at strides 2, 4 and 8."""

    def __init__(self, config: NetworkConfig):
        super().__init__()
        stem = config.channels(config.stem_channels)
        widths = [config.channels(c) for c in config.group_channels]
        self.stem = nn.Conv2d(3, stem, 3, padding=1, bias=False)
        self.group1 = _group(stem, widths[0], config.group_blocks[0], stride=2)
        self.group2 = _group(widths[0], widths[1], config.group_blocks[1], stride=2)
        self.group3 = _group(widths[1], widths[2], config.group_blocks[2], stride=2)
        # Pre-activation units leave their output un-normalised: close each group with BN-ReLU
        # so the multiplicative fusion sees non-negative, comparable features.
        self.out_bns = nn.ModuleList(nn.BatchNorm2d(w) for w in widths)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x: N×3×H×W → features at strides 2, 4, 8 (each after BN-ReLU)."""
        x1 = self.group1(self.stem(x))
        x2 = self.group2(x1)
        x3 = self.group3(x2)
        return [F.relu(bn(f)) for bn, f in zip(self.out_bns, (x1, x2, x3))]


class EfficientNetAppearance(nn.Module):
    """EfficientNet-Lite0 appearance stream projected to the WRN widths at strides 2, 4 and 8.

    Stride 8 also sees the stride-16 features (upsampled), for more context.
    """

    def __init__(self, config: NetworkConfig):
        super().__init__()
        from amp_ros.efficientnet import TAP_CHANNELS, EfficientNetLite0Trunk

        widths = [config.channels(c) for c in config.group_channels]
        self.trunk = EfficientNetLite0Trunk()
        inputs = (TAP_CHANNELS[0], TAP_CHANNELS[1], TAP_CHANNELS[2] + TAP_CHANNELS[3])
        self.projections = nn.ModuleList(
            nn.Sequential(nn.Conv2d(i, w, 1, bias=False), nn.BatchNorm2d(w)) for i, w in zip(inputs, widths)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x: N×3×H×W → features at strides 2, 4, 8 (after BN-ReLU), like :class:`Stream`."""
        s2, s4, s8, s16 = self.trunk(x)
        s16 = F.interpolate(s16, size=s8.shape[-2:], mode="bilinear", align_corners=False)
        levels = (s2, s4, torch.cat([s8, s16], dim=1))
        return [F.relu(project(f)) for project, f in zip(self.projections, levels)]


class U2NetAppearance(nn.Module):
    """U²-Net(p) appearance stream: its decoder features and saliency logit, projected to the WRN
    widths at strides 2, 4 and 8 (stride 8 also sees stride 16, upsampled)."""

    def __init__(self, config: NetworkConfig):
        super().__init__()
        from amp_ros.u2net import U2Net

        widths = [config.channels(c) for c in config.group_channels]
        self.trunk = U2Net(config.appearance)
        c2, c4, c8, c16 = self.trunk.feature_channels
        inputs = (c2 + 1, c4 + 1, c8 + c16 + 1)  # + the saliency logit at each level
        self.projections = nn.ModuleList(
            nn.Sequential(nn.Conv2d(i, w, 1, bias=False), nn.BatchNorm2d(w)) for i, w in zip(inputs, widths)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x: N×3×H×W → features at strides 2, 4, 8 (after BN-ReLU), like :class:`Stream`."""
        (s2, s4, s8, s16), saliency = self.trunk.features(x)
        s16 = F.interpolate(s16, size=s8.shape[-2:], mode="bilinear", align_corners=False)
        levels = [s2, s4, torch.cat([s8, s16], dim=1)]
        levels = [torch.cat([f, F.adaptive_avg_pool2d(saliency, f.shape[-2:])], dim=1) for f in levels]
        return [F.relu(project(f)) for project, f in zip(self.projections, levels)]


APPEARANCES = {"wrn": Stream, "efficientnet_lite0": EfficientNetAppearance, "u2netp": U2NetAppearance,
               "u2net": U2NetAppearance}
"""Appearance streams by name: the paper's WRN (from scratch) and the pretrained ones."""


FUSIONS = {"product": torch.mul, "sum": torch.add}
"""How the appearance and motion features meet at each group: AMP's element-wise product (motion
gates appearance: a still region's features vanish) or their sum (either stream alone can fire)."""


class TwoStreamNetwork(nn.Module):
    """Appearance and motion streams, fused per :data:`FUSIONS`, and a dilated trunk; returns the
    head-level features."""

    def __init__(self, config: NetworkConfig):
        super().__init__()
        self.config = config
        top = config.channels(config.group_channels[2])
        if config.appearance not in APPEARANCES:
            raise ValueError(f"unknown appearance stream {config.appearance!r}; one of {sorted(APPEARANCES)}")
        if config.fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {config.fusion!r}; one of {sorted(FUSIONS)}")
        self.fuse = FUSIONS[config.fusion]
        self.appearance = APPEARANCES[config.appearance](config)
        self.motion = Stream(config)
        self.trunk = nn.Sequential(*(PreActUnit(top, top, dilation=d) for d in config.trunk_dilations))
        self.trunk_bn = nn.BatchNorm2d(top)
        level_channels = {
            "stride2": config.channels(config.group_channels[0]),
            "stride4": config.channels(config.group_channels[1]),
            "stride8": top,
            "trunk": top,
        }
        unknown = set(config.head_levels) - set(level_channels)
        if unknown or not config.head_levels:
            raise ValueError(f"head levels must be among {sorted(level_channels)}, got {config.head_levels}")
        self.head_channels = tuple(level_channels[name] for name in config.head_levels)

    def forward(self, image: torch.Tensor, flow_rgb: torch.Tensor) -> list[torch.Tensor]:
        """The head features, one N×C_l×h_l×w_l map per head level, L2-normalised per pixel.

        image, flow_rgb: N×3×H×W, normalised as the checkpoint config says.
        """
        fused = [self.fuse(a, m) for a, m in zip(self.appearance(image), self.motion(flow_rgb))]
        trunk = F.relu(self.trunk_bn(self.trunk(fused[2])))
        levels = {"stride2": fused[0], "stride4": fused[1], "stride8": fused[2], "trunk": trunk}
        return [F.normalize(levels[name], dim=1) for name in self.config.head_levels]


def two_stream_network(
    *,
    width: float = NetworkConfig.width,
    appearance: str = NetworkConfig.appearance,
    fusion: str = NetworkConfig.fusion,
    group_blocks: Sequence[int] = NetworkConfig.group_blocks,
    head_levels: Sequence[str] = NetworkConfig.head_levels,
    class_names: Sequence[str] = NetworkConfig.class_names,
    **kwargs: object,
) -> TwoStreamNetwork:
    """Build the two-stream network; ``width`` scales every channel count (0.25 suits a CPU).

    ``appearance="efficientnet_lite0"`` swaps the appearance stream for an EfficientNet-Lite0
    (load its ImageNet weights with :func:`amp_ros.efficientnet.load_imagenet_weights`),
    ``"u2netp"``/``"u2net"`` for a U²-Net(p) (weights: :func:`amp_ros.u2net.load_onnx_weights`).
    ``fusion`` is one of :data:`FUSIONS`.
    """
    config = NetworkConfig(
        width=width,
        appearance=appearance,
        fusion=fusion,
        group_blocks=tuple(group_blocks),
        head_levels=tuple(head_levels),
        class_names=tuple(class_names),
        **kwargs,
    )
    return TwoStreamNetwork(config)


def build_heads(network: TwoStreamNetwork) -> ProxyHeads:
    """Fresh learnable heads for ``network``'s head levels and its config's classes and scale."""
    config = network.config
    return ProxyHeads(network.head_channels, config.class_names, scale=config.scale)


__all__ = [
    "APPEARANCES", "FUSIONS", "NetworkConfig", "PreActUnit", "Stream", "TwoStreamNetwork", "U2NetAppearance",
    "build_heads", "two_stream_network",
]
