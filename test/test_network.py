"""Two-stream network: shapes on awkward frame sizes, head levels, width multiplier, determinism,
fusion form."""

from __future__ import annotations

import math

import pytest
import torch

from amp_ros.network import NetworkConfig, TwoStreamNetwork, build_heads, two_stream_network


@pytest.fixture(scope="module")
def tiny() -> TwoStreamNetwork:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return two_stream_network(width=0.0625, group_blocks=(1, 1, 1)).eval()


@pytest.mark.parametrize("size", [(1, 1), (7, 5), (33, 17), (17, 33), (8, 8)])
def test_output_and_feature_shapes(tiny: TwoStreamNetwork, size: tuple[int, int]) -> None:
    """Head features at strides 4, 8, 8 (rounded up); the heads' logits at the input size."""
    height, width = size
    image, flow = torch.randn(1, 3, height, width), torch.randn(1, 3, height, width)
    with torch.no_grad():
        features = tiny(image, flow)
        logits = build_heads(tiny)(features, (height, width))
    assert logits.shape == (1, 2, height, width)
    assert torch.isfinite(logits).all()
    expected = [(16, 4), (32, 8), (32, 8)]
    assert len(features) == 3
    for feature, (channels, stride) in zip(features, expected):
        assert feature.shape == (1, channels, math.ceil(height / stride), math.ceil(width / stride))


def test_features_are_unit_per_pixel(tiny: TwoStreamNetwork) -> None:
    """Head features are L2-normalised per pixel (or zero where ReLU killed every channel)."""
    image = torch.randn(1, 3, 16, 24, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        features = tiny(image, image.flip(-1))
    for feature in features:
        norms = feature.norm(dim=1)
        assert bool(((norms - 1).abs() < 1e-5).logical_or(norms == 0).all())


def test_three_head_levels_by_default(tiny: TwoStreamNetwork) -> None:
    """The heads read stride 4, stride 8 and the trunk; classes background/object."""
    assert tiny.config.head_levels == ("stride4", "stride8", "trunk")
    assert tiny.head_channels == (16, 32, 32)
    heads = build_heads(tiny)
    assert heads.channels == (16, 32, 32)
    assert heads.class_names == ("background", "object")
    assert not any(name.startswith("classifier") for name in tiny.state_dict())  # stateless


def test_width_multiplier_scales_channels() -> None:
    """Width ⅛ doubles width 1/16's channels; the floor is 8 channels; width 1 is the paper's."""
    wider = two_stream_network(width=0.125, group_blocks=(1, 1, 1))
    assert wider.head_channels == (32, 64, 64)
    assert wider.appearance.stem.out_channels == 8
    config = NetworkConfig()
    assert [config.channels(c) for c in (64, 128, 256, 512)] == [64, 128, 256, 512]
    assert NetworkConfig(width=0.01).channels(512) == 8


def test_batch_and_batch_size_two(tiny: TwoStreamNetwork) -> None:
    """Frames in a batch are processed independently in eval mode (every level)."""
    images = torch.randn(2, 3, 9, 11, generator=torch.Generator().manual_seed(2))
    flows = torch.randn(2, 3, 9, 11, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        both = tiny(images, flows)
        first = tiny(images[:1], flows[:1])
    for level_both, level_first in zip(both, first):
        torch.testing.assert_close(level_both[:1], level_first)


def test_deterministic_in_eval_mode(tiny: TwoStreamNetwork) -> None:
    """Two passes over the same input give identical features."""
    image = torch.randn(1, 3, 13, 21, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(tiny(image, image), tiny(image, image)))


def test_head_level_choice_and_errors() -> None:
    """head_levels picks the levels; unknown names are refused with the allowed list."""
    net = two_stream_network(width=0.0625, group_blocks=(1, 1, 1), head_levels=("stride2", "trunk"))
    assert net.head_channels == (8, 32)
    with pytest.raises(ValueError, match=r"head levels must be among \['stride2', 'stride4', "):
        two_stream_network(width=0.0625, group_blocks=(1, 1, 1), head_levels=("stride16",))


def test_config_dict_round_trip() -> None:
    """to_dict/from_dict round trip (lists back to tuples); unknown keys are an error."""
    config = NetworkConfig(width=0.25, group_blocks=(1, 2, 3), class_names=("bg", "fg", "x"))
    data = config.to_dict()
    assert data["class_names"] == ("bg", "fg", "x")
    listed = {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}
    assert NetworkConfig.from_dict(listed) == config
    with pytest.raises(ValueError, match=r"unknown network config keys: \['depth'\]"):
        NetworkConfig.from_dict({"depth": 3})


def test_fusion_multiplies_or_adds_the_streams() -> None:
    """The stride-4 head feature is the normalised product (AMP) or sum of the two streams'
    features; a config without the key (an older checkpoint) is the product."""
    image = torch.randn(1, 3, 16, 24, generator=torch.Generator().manual_seed(5))
    flow = torch.randn(1, 3, 16, 24, generator=torch.Generator().manual_seed(6))
    for fusion, combine in (("product", torch.mul), ("sum", torch.add)):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            net = two_stream_network(width=0.0625, group_blocks=(1, 1, 1), fusion=fusion).eval()
        with torch.no_grad():
            stride4 = net(image, flow)[0]
            expected = combine(net.appearance(image)[1], net.motion(flow)[1])
        torch.testing.assert_close(stride4, torch.nn.functional.normalize(expected, dim=1))
    data = NetworkConfig().to_dict()
    del data["fusion"]
    assert NetworkConfig.from_dict(data).fusion == "product"
    with pytest.raises(ValueError, match=r"unknown fusion 'concat'; one of \['product', 'sum'\]"):
        two_stream_network(width=0.0625, group_blocks=(1, 1, 1), fusion="concat")
