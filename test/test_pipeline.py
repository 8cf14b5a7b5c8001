"""Pipeline: step/teach/forget/reset on the tiny checkpoint, outputs at the input size."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from amp_ros.checkpoint import Checkpoint, InputConfig
from amp_ros.classifier import ClassifierState
from amp_ros.errors import EmptyMaskError, InputError, UnknownClassError
from amp_ros.network import two_stream_wrn
from amp_ros.pipeline import Pipeline

Frames = Callable[..., np.ndarray]


def _weights(pipeline: Pipeline) -> list[torch.Tensor]:
    return [w.detach().clone() for w in pipeline.classifier.weights]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


def _box_mask(height: int, width: int) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    mask[height // 4 : 3 * height // 4, width // 4 : 3 * width // 4] = 255
    return mask


@pytest.mark.parametrize("size", [(24, 32), (80, 96), (33, 17)])
def test_step_outputs(tiny_pipeline: Pipeline, make_frame: Frames, size: tuple[int, int]) -> None:
    """mask uint8 {0, 255} and probability float32 in [0, 1], both at the input size.

    80×96 is larger than the checkpoint's max_side (64), so it exercises the resizing path.
    """
    sources = []
    for shift in range(3):
        result = tiny_pipeline.step(make_frame(*size, shift=(shift, 0)))
        assert result.mask.shape == size and result.mask.dtype == np.uint8
        assert set(np.unique(result.mask)) <= {0, 255}
        assert result.probability.shape == size and result.probability.dtype == np.float32
        assert 0.0 <= result.probability.min() and result.probability.max() <= 1.0
        assert np.array_equal(result.mask == 255, result.probability > 0.5)
        assert result.labels is None  # no class taught
        assert set(result.timings) >= {"flow", "network", "crf", "adapt", "total"}
        sources.append(result.flow_source)
    assert sources == ["none", "dis", "dis"]


def test_given_flow_is_used(tiny_pipeline: Pipeline, make_frame: Frames) -> None:
    """A flow argument (frame size, pixels) is used as is: source "given", even on frame 1."""
    flow = np.zeros((80, 96, 2), np.float32)
    flow[..., 0] = 2.0
    assert tiny_pipeline.step(make_frame(80, 96), flow).flow_source == "given"
    assert tiny_pipeline.step(make_frame(80, 96, shift=(2, 0)), flow).flow_source == "given"


def test_new_frame_size_restarts_flow(tiny_pipeline: Pipeline, make_frame: Frames) -> None:
    """When the frame size changes there is no previous frame to compute DIS flow from."""
    assert tiny_pipeline.step(make_frame(24, 32)).flow_source == "none"
    assert tiny_pipeline.step(make_frame(32, 24)).flow_source == "none"


def test_step_input_errors(tiny_pipeline: Pipeline, make_frame: Frames) -> None:
    """Bad frames and flows are InputErrors with the expected shapes in the message."""
    frame = make_frame(24, 32)
    with pytest.raises(InputError, match=r"flow must have shape \(24, 32, 2\)"):
        tiny_pipeline.step(frame, np.zeros((32, 24, 2), np.float32))
    with pytest.raises(InputError, match="flow contains NaN or inf"):
        tiny_pipeline.step(frame, np.full((24, 32, 2), np.nan, np.float32))
    with pytest.raises(InputError, match="H×W×3 uint8 RGB"):
        tiny_pipeline.step(frame[..., 0])


def test_self_adaptation_moves_only_base_proxies(tiny_pipeline: Pipeline, make_frame: Frames) -> None:
    """With α > 0 the adapted steps change background/object; the count matches the flags."""
    before = _weights(tiny_pipeline)
    results = [tiny_pipeline.step(make_frame(24, 32, shift=(s, 0))) for s in range(3)]
    adapted = sum(r.adapted for r in results)
    assert tiny_pipeline.adaptation_updates == adapted
    assert _same(before, _weights(tiny_pipeline)) == (adapted == 0)


@pytest.mark.parametrize("changes", [{"alpha": 0.0}, {"adapt": False}])
def test_no_adaptation_never_changes_weights(
    tiny_pipeline: Pipeline, make_frame: Frames, changes: dict
) -> None:
    """alpha=0 (or adapt off): weights bit-identical after several frames, nothing adapted."""
    tiny_pipeline.configure(**changes)
    before = _weights(tiny_pipeline)
    for shift in range(3):
        assert not tiny_pipeline.step(make_frame(24, 32, shift=(shift, 1))).adapted
    assert _same(before, _weights(tiny_pipeline))
    assert tiny_pipeline.adaptation_updates == 0


def test_teach_imprints_a_class_that_shows_in_labels(tiny_pipeline: Pipeline, make_frame: Frames) -> None:
    """teach → new id, listed in taught_classes; the labels of that frame contain the id."""
    frame = make_frame(24, 32)
    class_id = tiny_pipeline.teach("cup", _box_mask(24, 32), frame)
    assert class_id == 2
    assert tiny_pipeline.taught_classes == {"cup": 2}
    result = tiny_pipeline.step(frame)
    assert result.labels is not None
    assert result.labels.shape == (24, 32) and result.labels.dtype == np.uint8
    assert set(np.unique(result.labels)) <= {0, 1, 2}
    assert (result.labels[_box_mask(24, 32) > 0] == class_id).any()


def test_teach_on_the_last_frame(tiny_pipeline: Pipeline, make_frame: Frames) -> None:
    """frame=None teaches on the frame step() processed last (at its input size)."""
    with pytest.raises(InputError, match="no frame given and no frame processed yet"):
        tiny_pipeline.teach("cup", _box_mask(80, 96))
    tiny_pipeline.step(make_frame(80, 96))
    assert tiny_pipeline.teach("cup", _box_mask(80, 96)) == 2
    with pytest.raises(InputError, match=r"mask has shape \(24, 32\), the frame is \(80, 96\)"):
        tiny_pipeline.teach("box", _box_mask(24, 32))


def test_teach_existing_class_adapts_it(tiny_pipeline: Pipeline, make_frame: Frames) -> None:
    """Teaching a known label keeps its id and moves only its rows (teach_alpha)."""
    class_id = tiny_pipeline.teach("cup", _box_mask(24, 32), make_frame(24, 32))
    before = _weights(tiny_pipeline)
    assert tiny_pipeline.teach("cup", _box_mask(24, 32), make_frame(24, 32, seed=3)) == class_id
    after = _weights(tiny_pipeline)
    for old, new in zip(before, after):
        assert torch.equal(old[:2], new[:2])
        assert not torch.equal(old[2], new[2])
    assert tiny_pipeline.taught_classes == {"cup": class_id}


def test_teach_mask_values(tiny_pipeline: Pipeline, make_frame: Frames) -> None:
    """Any non-zero mask value is the object: a 0/255 mask teaches what a 0/1 mask does."""
    frame = make_frame(24, 32)
    tiny_pipeline.teach("a", _box_mask(24, 32), frame)
    tiny_pipeline.teach("b", (_box_mask(24, 32) > 0).astype(np.uint8), frame)
    for weight in tiny_pipeline.classifier.weights:
        assert torch.equal(weight[2], weight[3])


def test_teach_errors(tiny_pipeline: Pipeline, make_frame: Frames) -> None:
    """Empty mask, wrong mask size and blank label are refused; nothing is imprinted."""
    frame = make_frame(24, 32)
    with pytest.raises(EmptyMaskError, match="the mask selects no pixel: nothing to teach"):
        tiny_pipeline.teach("cup", np.zeros((24, 32), np.uint8), frame)
    with pytest.raises(InputError, match=r"mask has shape \(32, 24\), the frame is \(24, 32\)"):
        tiny_pipeline.teach("cup", _box_mask(32, 24), frame)
    with pytest.raises(InputError, match="label must be a non-empty name"):
        tiny_pipeline.teach("  ", _box_mask(24, 32), frame)
    assert tiny_pipeline.taught_classes == {}


def test_forget(tiny_pipeline: Pipeline, make_frame: Frames) -> None:
    """Taught classes can be forgotten; base classes cannot; unknown names are reported."""
    tiny_pipeline.teach("cup", _box_mask(24, 32), make_frame(24, 32))
    with pytest.raises(InputError, match="'object' is a base class of the checkpoint"):
        tiny_pipeline.forget("object")
    with pytest.raises(InputError, match="'background' is a base class"):
        tiny_pipeline.forget("background")
    tiny_pipeline.forget("cup")
    assert tiny_pipeline.taught_classes == {}
    assert tiny_pipeline.classifier.class_names == ["background", "object"]
    with pytest.raises(UnknownClassError, match="unknown class 'cup'"):
        tiny_pipeline.forget("cup")
    assert tiny_pipeline.step(make_frame(24, 32)).labels is None


def test_reset_restores_base_and_keeps_taught(tiny_pipeline: Pipeline, make_frame: Frames) -> None:
    """reset: base proxies exactly as loaded, taught classes exactly as they were, no history."""
    initial = _weights(tiny_pipeline)
    tiny_pipeline.configure(alpha=0.2)
    tiny_pipeline.step(make_frame(24, 32))
    tiny_pipeline.teach("cup", _box_mask(24, 32))
    tiny_pipeline.teach("cup", _box_mask(24, 32), make_frame(24, 32, seed=5))  # adapted: not unit-exact
    for shift in range(1, 3):
        tiny_pipeline.step(make_frame(24, 32, shift=(shift, 0)))
    assert tiny_pipeline.adaptation_updates > 0
    taught = [w[2].clone() for w in _weights(tiny_pipeline)]

    tiny_pipeline.reset()

    after = _weights(tiny_pipeline)
    assert _same([w[:2] for w in after], initial)
    assert _same([w[2] for w in after], taught)
    assert tiny_pipeline.taught_classes == {"cup": 2}
    assert tiny_pipeline.adaptation_updates == 0
    assert tiny_pipeline.step(make_frame(24, 32)).flow_source == "none"
    tiny_pipeline.reset()  # also forgets the last frame: teach needs a new one
    with pytest.raises(InputError, match="no frame processed yet"):
        tiny_pipeline.teach("cup", _box_mask(24, 32))


def test_taught_state_round_trip(tiny_checkpoint: Path, make_frame: Frames) -> None:
    """taught_state → restore_taught into a fresh pipeline: same ids, names, exact weights."""
    source = Pipeline.from_checkpoint(tiny_checkpoint)
    source.teach("cup", _box_mask(24, 32), make_frame(24, 32))
    source.teach("box", _box_mask(24, 32), make_frame(24, 32, seed=2))
    source.teach("cup", _box_mask(24, 32), make_frame(24, 32, seed=4))
    source.forget("cup")
    source.teach("lid", _box_mask(24, 32), make_frame(24, 32, seed=6))
    state = source.taught_state()
    assert state.names == ("box", "lid") and state.ids == (3, 4)
    assert [w.shape[0] for w in state.weights] == [2, 2, 2]

    target = Pipeline.from_checkpoint(tiny_checkpoint)
    target.teach("old", _box_mask(24, 32), make_frame(24, 32))  # replaced by the restore
    target.restore_taught(state)
    assert target.taught_classes == {"box": 3, "lid": 4}
    assert _same(list(target.taught_state().weights), list(state.weights))
    assert _same(_weights(target), _weights(source))
    frame = make_frame(24, 32, seed=9)
    assert np.array_equal(source.step(frame).labels, target.step(frame).labels)


def test_restore_taught_refuses_bad_states(tiny_pipeline: Pipeline, make_frame: Frames) -> None:
    """Other networks, inconsistent or colliding states are refused and change nothing."""
    tiny_pipeline.teach("cup", _box_mask(24, 32), make_frame(24, 32))
    state = tiny_pipeline.taught_state()
    before = _weights(tiny_pipeline)
    other = ClassifierState(state.ids, state.names, (torch.ones(1, 16), torch.ones(1, 16)), 0.0)
    with pytest.raises(InputError, match="made with a different network"):
        tiny_pipeline.restore_taught(other)
    clash = ClassifierState((1,), state.names, state.weights, state.log_scale)
    with pytest.raises(InputError, match="collide with the base classes"):
        tiny_pipeline.restore_taught(clash)
    named = ClassifierState(state.ids, ("object",), state.weights, state.log_scale)
    with pytest.raises(InputError, match="collide with the base classes"):
        tiny_pipeline.restore_taught(named)
    ragged = ClassifierState((2, 3), state.names, state.weights, state.log_scale)
    with pytest.raises(InputError, match="inconsistent"):
        tiny_pipeline.restore_taught(ragged)
    assert tiny_pipeline.taught_classes == {"cup": 2}
    assert _same(before, _weights(tiny_pipeline))


def test_checkpoint_without_base_classes_is_refused() -> None:
    """A pipeline needs the background and object classes."""
    model = two_stream_wrn(width=0.0625, group_blocks=(1, 1, 1), class_names=("bg", "fg")).eval()
    with pytest.raises(UnknownClassError, match="unknown class 'background'"):
        Pipeline(Checkpoint(model=model, input=InputConfig(max_side=64)))
