"""Settings on dataclass fields: flattening by prefix, building back, and the pipeline's names."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest

from amp_ros.crf import CrfConfig
from amp_ros.pseudo_labels import PseudoLabelConfig
from amp_ros.setting_fields import build, check, flatten, group, not_exposed, setting
from amp_ros.settings import PipelineConfig


@dataclass(frozen=True)
class Inner:
    size: int = field(default=3, metadata=setting("a size", (0, 10)))
    rate: float = field(default=0.5, metadata=setting("a rate", (0.0, 1.0), name="speed"))


@dataclass(frozen=True)
class Outer:
    mode: str = field(default="a", metadata=setting("a mode", ("a", "b"), read_only=True))
    on: bool = field(default=True, metadata=setting("a switch"))
    inner: Inner = field(default_factory=Inner, metadata=group("inner_"))
    hidden: tuple[int, ...] = field(default=(1, 2), metadata=not_exposed("not a setting"))


def test_flatten_names_nested_settings_by_prefix() -> None:
    settings = flatten(Outer)
    assert [(s.name, s.path, s.default, s.read_only) for s in settings] == [
        ("mode", ("mode",), "a", True),
        ("on", ("on",), True, False),
        ("inner_size", ("inner", "size"), 3, False),
        ("inner_speed", ("inner", "rate"), 0.5, False),
    ]
    assert settings[0].choices == ("a", "b") and settings[2].choices is None


def test_build_takes_every_setting_by_name_and_keeps_hidden_defaults() -> None:
    values = {"mode": "b", "on": False, "inner_size": 7, "inner_speed": 1}  # an int for a float
    built = build(Outer, values)
    assert built == Outer(mode="b", on=False, inner=Inner(size=7, rate=1.0), hidden=(1, 2))
    assert type(built.inner.rate) is float
    with pytest.raises(KeyError):
        build(Outer, {"mode": "b"})
    with pytest.raises(TypeError):
        build(Outer, {**values, "on": "yes"})


def test_check_refuses_a_value_outside_the_choices() -> None:
    check(flatten(Outer), {"mode": "b"})
    with pytest.raises(ValueError, match="mode"):
        check(flatten(Outer), {"mode": "c"})


def test_a_field_without_a_mark_is_an_error() -> None:
    @dataclass(frozen=True)
    class Unmarked:
        size: int = 3

    with pytest.raises(TypeError, match=r"Unmarked\.size"):
        flatten(Unmarked)


def test_pipeline_settings_keep_their_ros_names_and_round_trip() -> None:
    settings = flatten(PipelineConfig)
    assert [s.name for s in settings] == [
        "adapt", "alpha", "teach_alpha", "taught_alpha", "taught_crf", "taught_background_grid",
        "taught_search_radius",
        "foreground_threshold", "erosion", "background_distance",
        "propagation", "onnx", "crf", "crf_iterations", "crf_gaussian_sxy", "crf_gaussian_compat",
        "crf_bilateral_sxy", "crf_bilateral_srgb", "crf_bilateral_compat", "crf_backend",
        "dis_preset", "mask_threshold",
    ]
    defaults = {s.name: s.default for s in settings}
    assert build(PipelineConfig, defaults) == PipelineConfig()
    changed = build(PipelineConfig, {**defaults, "erosion": 0.02, "crf_iterations": 12, "taught_crf": False})
    assert changed == replace(
        PipelineConfig(),
        pseudo=PseudoLabelConfig(erosion=0.02),
        crf_config=CrfConfig(iterations=12),
        taught_crf=False,
    )
