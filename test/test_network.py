"""Two-stream WRN: shapes on awkward frame sizes, head levels, width multiplier, determinism."""

from __future__ import annotations

import math

import pytest
import torch

from amp_ros.network import NetworkConfig, TwoStreamWRN, two_stream_wrn


@pytest.fixture(scope="module")
def tiny() -> TwoStreamWRN:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return two_stream_wrn(width=0.0625, group_blocks=(1, 1, 1)).eval()


@pytest.mark.parametrize("size", [(1, 1), (7, 5), (33, 17), (17, 33), (8, 8)])
def test_output_and_feature_shapes(tiny: TwoStreamWRN, size: tuple[int, int]) -> None:
    """Logits at the input size; head features at strides 4, 8, 8 (rounded up)."""
    height, width = size
    image, flow = torch.randn(1, 3, height, width), torch.randn(1, 3, height, width)
    with torch.no_grad():
        logits = tiny(image, flow)
        features = tiny.features(image, flow)
    assert logits.shape == (1, 2, height, width)
    assert torch.isfinite(logits).all()
    expected = [(16, 4), (32, 8), (32, 8)]
    assert len(features) == 3
    for feature, (channels, stride) in zip(features, expected):
        assert feature.shape == (1, channels, math.ceil(height / stride), math.ceil(width / stride))


def test_features_are_unit_per_pixel(tiny: TwoStreamWRN) -> None:
    """Head features are L2-normalised per pixel (or zero where ReLU killed every channel)."""
    image = torch.randn(1, 3, 16, 24, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        features = tiny.features(image, image.flip(-1))
    for feature in features:
        norms = feature.norm(dim=1)
        assert bool(((norms - 1).abs() < 1e-5).logical_or(norms == 0).all())


def test_three_head_levels_by_default(tiny: TwoStreamWRN) -> None:
    """The classifier reads stride 4, stride 8 and the trunk; classes background/object."""
    assert tiny.config.head_levels == ("stride4", "stride8", "trunk")
    assert tiny.classifier.channels == (16, 32, 32)
    assert tiny.classifier.class_names == ["background", "object"]


def test_width_multiplier_scales_channels() -> None:
    """Width ⅛ doubles width 1/16's channels; the floor is 8 channels; width 1 is the paper's."""
    wider = two_stream_wrn(width=0.125, group_blocks=(1, 1, 1))
    assert wider.classifier.channels == (32, 64, 64)
    assert wider.appearance.stem.out_channels == 8
    config = NetworkConfig()
    assert [config.channels(c) for c in (64, 128, 256, 512)] == [64, 128, 256, 512]
    assert NetworkConfig(width=0.01).channels(512) == 8


def test_batch_and_batch_size_two(tiny: TwoStreamWRN) -> None:
    """Frames in a batch are processed independently in eval mode."""
    images = torch.randn(2, 3, 9, 11, generator=torch.Generator().manual_seed(2))
    flows = torch.randn(2, 3, 9, 11, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        both = tiny(images, flows)
        first = tiny(images[:1], flows[:1])
    torch.testing.assert_close(both[:1], first)


def test_deterministic_in_eval_mode(tiny: TwoStreamWRN) -> None:
    """Two passes over the same input give identical logits."""
    image = torch.randn(1, 3, 13, 21, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert torch.equal(tiny(image, image), tiny(image, image))


def test_head_level_choice_and_errors() -> None:
    """head_levels picks the levels; unknown names are refused with the allowed list."""
    net = two_stream_wrn(width=0.0625, group_blocks=(1, 1, 1), head_levels=("stride2", "trunk"))
    assert net.classifier.channels == (8, 32)
    with pytest.raises(ValueError, match=r"head levels must be among \['stride2', 'stride4', "):
        two_stream_wrn(width=0.0625, group_blocks=(1, 1, 1), head_levels=("stride16",))


def test_config_dict_round_trip() -> None:
    """to_dict/from_dict round trip (lists back to tuples); unknown keys are an error."""
    config = NetworkConfig(width=0.25, group_blocks=(1, 2, 3), class_names=("bg", "fg", "x"))
    data = config.to_dict()
    assert data["class_names"] == ("bg", "fg", "x")
    listed = {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}
    assert NetworkConfig.from_dict(listed) == config
    with pytest.raises(ValueError, match=r"unknown network config keys: \['depth'\]"):
        NetworkConfig.from_dict({"depth": 3})
