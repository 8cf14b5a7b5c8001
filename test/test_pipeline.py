"""Pipeline: step/teach/forget/reset on the tiny checkpoint, outputs at the input size."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from amp_ros.checkpoint import Checkpoint, InputConfig
from amp_ros.errors import EmptyMaskError, InputError, UnknownClassError
from amp_ros.flow import compute_dis_flow
from amp_ros.network import build_heads, two_stream_network
from amp_ros.pipeline import Pipeline, TeachResult, spare_core
from amp_ros.proxy_set import ProxySet
from amp_ros.pseudo_labels import PseudoLabelConfig
from amp_ros.settings import PipelineConfig
from amp_ros.taught_classes import TaughtClasses

Frames = Callable[..., np.ndarray]


def _same(a: ProxySet, b: ProxySet) -> bool:
    """Same classes, ids and bit-identical weights."""
    same_rows = all(torch.equal(x, y) for x, y in zip(a.weights, b.weights))
    return (a.names, a.ids) == (b.names, b.ids) and same_rows


def _same_taught(a: TaughtClasses, b: TaughtClasses) -> bool:
    return (_same(a.objects, b.objects) and len(a.backgrounds) == len(b.backgrounds)
            and all(_same(x, y) for x, y in zip(a.backgrounds, b.backgrounds)))


def _rows(taught: TaughtClasses, row: int) -> list[torch.Tensor]:
    """Every weight row of taught class ``row``: its object, then its background cells."""
    return [w[row] for w in taught.objects.weights] + list(taught.backgrounds[row].weights)


def _object_frame(make_frame: Frames, seed: int = 0) -> np.ndarray:
    """48×64: a grey texture with a bright red textured box in the middle (_box_mask(48, 64))."""
    frame = (make_frame(48, 64, seed=seed) // 3 + 60).astype(np.uint8)
    box = _box_mask(48, 64) > 0
    red = make_frame(48, 64, seed=seed + 100)
    frame[box] = np.stack([200 + red[..., 0] // 5, red[..., 1] // 6, red[..., 2] // 6], -1)[box]
    return frame


def _confident(pipeline: Pipeline) -> None:
    """Pseudo-labels from any probability above one half, no erosion: the tiny random model
    is never confident enough for the defaults, and these tests need adaptation to happen."""
    pipeline.configure(pseudo=PseudoLabelConfig(foreground_threshold=0.5, erosion=0.0,
                                                background_distance=0.0))


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


def test_dis_preset_chooses_the_pipelines_own_flow(tiny_pipeline: Pipeline, make_frame: Frames) -> None:
    """Without a given flow, the network sees OpenCV DIS flow of the configured preset between
    the two frames at the processing size."""
    first, second = make_frame(80, 96), make_frame(80, 96, shift=(3, 1))
    flows = {}
    for preset in ("medium", "ultrafast"):
        tiny_pipeline.configure(dis_preset=preset)
        tiny_pipeline.reset()
        before, after = tiny_pipeline.step(first), tiny_pipeline.step(second)
        expected = compute_dis_flow(before.small_frame, after.small_frame, preset)
        np.testing.assert_array_equal(after.small_flow, expected)
        flows[preset] = after.small_flow
    assert not np.array_equal(flows["medium"], flows["ultrafast"])


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
    """alpha > 0, taught_alpha 0: the base proxies adapt on every adapted frame, taught ones never."""
    _confident(tiny_pipeline)
    tiny_pipeline.configure(taught_alpha=0.0, alpha=0.1)
    tiny_pipeline.teach("cup", _box_mask(48, 64), _object_frame(make_frame))
    base, taught = tiny_pipeline.base, tiny_pipeline.taught
    results = [tiny_pipeline.step(make_frame(24, 32, shift=(s, 0))) for s in range(3)]
    adapted = sum(r.adapted for r in results)
    assert adapted == 3 and tiny_pipeline.adaptation_updates == 3
    assert base.names == tiny_pipeline.base.names
    assert all(not torch.equal(a, b) for a, b in zip(base.weights, tiny_pipeline.base.weights))
    assert _same_taught(taught, tiny_pipeline.taught)


def test_taught_classes_self_adapt_and_reset_returns_them(
    tiny_pipeline: Pipeline, make_frame: Frames
) -> None:
    """taught_alpha > 0 moves the taught proxies per frame; reset brings back what was taught."""
    _confident(tiny_pipeline)
    tiny_pipeline.configure(alpha=0.0, taught_alpha=0.2)
    tiny_pipeline.teach("cup", _box_mask(48, 64), _object_frame(make_frame))
    taught, base = tiny_pipeline.taught_state(), tiny_pipeline.base
    tiny_pipeline.step(_object_frame(make_frame, seed=1))
    assert not torch.equal(tiny_pipeline.taught.objects.weights[0], taught.objects.weights[0])
    assert not torch.equal(tiny_pipeline.taught.backgrounds[0].weights[0], taught.backgrounds[0].weights[0])
    assert _same_taught(tiny_pipeline.taught_state(), taught)  # what persists is what was taught
    assert _same(tiny_pipeline.base, base)  # alpha 0: the base never moves
    tiny_pipeline.reset()
    assert _same_taught(tiny_pipeline.taught, taught)


@pytest.mark.parametrize("changes", [{"alpha": 0.0, "taught_alpha": 0.0}, {"adapt": False}])
def test_no_adaptation_never_changes_weights(
    tiny_pipeline: Pipeline, make_frame: Frames, changes: dict
) -> None:
    """alpha=0 (or adapt off): every proxy bit-identical after several frames, nothing adapted."""
    _confident(tiny_pipeline)
    tiny_pipeline.configure(**changes)
    tiny_pipeline.teach("cup", _box_mask(48, 64), _object_frame(make_frame))
    base, taught = tiny_pipeline.base, tiny_pipeline.taught
    for shift in range(3):
        assert not tiny_pipeline.step(make_frame(24, 32, shift=(shift, 1))).adapted
    assert _same(base, tiny_pipeline.base) and _same_taught(taught, tiny_pipeline.taught)
    assert tiny_pipeline.adaptation_updates == 0


@pytest.mark.parametrize("crf", [True, False])
def test_taught_class_labels_its_object_not_the_frame(
    tiny_pipeline: Pipeline, make_frame: Frames, crf: bool
) -> None:
    """A class taught on a red box against grey texture labels most of the box and little else
    on a new frame of the same kind (its own background, not the trained one, is the rival)."""
    tiny_pipeline.configure(taught_crf=crf, crf=crf)
    result = tiny_pipeline.teach("cup", _box_mask(48, 64), _object_frame(make_frame))
    assert result == TeachResult("cup", 2, True, 1)
    assert tiny_pipeline.taught_classes == {"cup": 2}
    labels = tiny_pipeline.step(_object_frame(make_frame, seed=7)).labels
    assert labels is not None and labels.shape == (48, 64) and labels.dtype == np.uint8
    assert set(np.unique(labels)) <= {0, 2}
    box, cup = _box_mask(48, 64) > 0, labels == 2
    assert (box & cup).sum() / (box | cup).sum() > 0.5  # IoU
    assert cup.sum() < 2 * box.sum()


def test_overlapping_classes_take_the_most_probable(tiny_pipeline: Pipeline, make_frame: Frames) -> None:
    """Two classes taught on the same box: each pixel gets one id, the one of higher probability;
    a class taught on the inverse region claims the outside."""
    tiny_pipeline.configure(crf=False, taught_crf=False, adapt=False)
    frame = _object_frame(make_frame)
    box = _box_mask(48, 64)
    tiny_pipeline.teach("box", box, frame)
    tiny_pipeline.teach("outside", 255 - box, frame)
    labels = tiny_pipeline.step(_object_frame(make_frame, seed=7)).labels
    assert (labels[box > 0] == 2).mean() > 0.5
    assert (labels[box == 0] == 3).mean() > 0.5
    assert set(np.unique(labels)) <= {0, 2, 3}


def test_teach_on_the_last_frames(tiny_pipeline: Pipeline, make_frame: Frames) -> None:
    """frames=None teaches on the last k frames step() processed (at their input size)."""
    with pytest.raises(InputError, match="no frame given and no frame processed yet"):
        tiny_pipeline.teach("cup", _box_mask(80, 96))
    tiny_pipeline.step(make_frame(80, 96))
    assert tiny_pipeline.teach("cup", _box_mask(80, 96)).class_id == 2
    with pytest.raises(InputError, match=r"mask 0 has shape \(24, 32\), its frame is \(80, 96\)"):
        tiny_pipeline.teach("box", _box_mask(24, 32))
    with pytest.raises(InputError, match=r"2 mask\(s\) given without frames, but only 1"):
        tiny_pipeline.teach("box", [_box_mask(80, 96)] * 2)
    tiny_pipeline.step(make_frame(80, 96, shift=(1, 0)))
    assert tiny_pipeline.teach("box", [_box_mask(80, 96)] * 2) == TeachResult("box", 3, True, 2)


def test_k_shot_proxy_is_the_mean_of_the_shots(tiny_checkpoint: Path, make_frame: Frames) -> None:
    """Two shots: each level's proxy is the normalised mean of the two one-shot (unit) proxies'
    unnormalised masked averages (AMP eq. 1); here both shots are the same frame, so it equals
    the one-shot proxy."""
    one, two = Pipeline.from_checkpoint(tiny_checkpoint), Pipeline.from_checkpoint(tiny_checkpoint)
    frame = _object_frame(make_frame)
    one.teach("cup", _box_mask(48, 64), frame)
    two.teach("cup", [_box_mask(48, 64)] * 2, [frame, frame])
    assert one.taught.backgrounds[0].names == two.taught.backgrounds[0].names
    for a, b in zip(_rows(one.taught, 0), _rows(two.taught, 0)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    with pytest.raises(InputError, match=r"2 mask\(s\) but 1 frame\(s\)"):
        two.teach("lid", [_box_mask(48, 64)] * 2, [frame])


def test_teach_existing_class_adapts_it(tiny_pipeline: Pipeline, make_frame: Frames) -> None:
    """Teaching a known label keeps its id and moves only its rows (teach_alpha)."""
    tiny_pipeline.teach("cup", _box_mask(24, 32), make_frame(24, 32))
    tiny_pipeline.teach("box", _box_mask(24, 32), make_frame(24, 32, seed=1))
    before = tiny_pipeline.taught_state()
    result = tiny_pipeline.teach("cup", _box_mask(24, 32), make_frame(24, 32, seed=3))
    assert result == TeachResult("cup", 2, False, 1)
    after = tiny_pipeline.taught_state()
    assert all(not torch.equal(old, new) for old, new in zip(_rows(before, 0), _rows(after, 0)))
    assert all(torch.equal(old, new) for old, new in zip(_rows(before, 1), _rows(after, 1)))
    assert tiny_pipeline.taught_classes == {"cup": 2, "box": 3}


def test_teach_mask_values(tiny_pipeline: Pipeline, make_frame: Frames) -> None:
    """Any non-zero mask value is the object: a 0/255 mask teaches what a 0/1 mask does."""
    frame = make_frame(24, 32)
    tiny_pipeline.teach("a", _box_mask(24, 32), frame)
    tiny_pipeline.teach("b", (_box_mask(24, 32) > 0).astype(np.uint8), frame)
    taught = tiny_pipeline.taught
    assert all(torch.equal(a, b) for a, b in zip(_rows(taught, 0), _rows(taught, 1)))


def test_teach_errors(tiny_pipeline: Pipeline, make_frame: Frames) -> None:
    """Empty or full masks, wrong sizes, blank, long or base-class labels are refused."""
    frame = make_frame(24, 32)
    with pytest.raises(EmptyMaskError, match="mask 0 selects no pixel: nothing to teach"):
        tiny_pipeline.teach("cup", np.zeros((24, 32), np.uint8), frame)
    with pytest.raises(EmptyMaskError, match="selects every pixel: no background"):
        tiny_pipeline.teach("cup", np.ones((24, 32), np.uint8), frame)
    with pytest.raises(InputError, match=r"mask 0 has shape \(32, 24\), its frame is \(24, 32\)"):
        tiny_pipeline.teach("cup", _box_mask(32, 24), frame)
    with pytest.raises(InputError, match="label must be a non-empty name"):
        tiny_pipeline.teach("  ", _box_mask(24, 32), frame)
    with pytest.raises(InputError, match="label has 65 characters; at most 64"):
        tiny_pipeline.teach("x" * 65, _box_mask(24, 32), frame)
    with pytest.raises(InputError, match="'object' is a base class"):
        tiny_pipeline.teach("object", _box_mask(24, 32), frame)
    with pytest.raises(InputError, match="teach needs at least one mask"):
        tiny_pipeline.teach("cup", [], frame)
    assert tiny_pipeline.taught_classes == {}


def test_forget_and_id_reuse(tiny_pipeline: Pipeline, make_frame: Frames) -> None:
    """Taught classes can be forgotten (their ids are free again); base classes cannot."""
    frame = make_frame(24, 32)
    for name in ("cup", "box", "lid"):
        tiny_pipeline.teach(name, _box_mask(24, 32), frame)
    with pytest.raises(InputError, match="'object' is a base class of the checkpoint"):
        tiny_pipeline.forget("object")
    with pytest.raises(InputError, match="'background' is a base class"):
        tiny_pipeline.forget("background")
    tiny_pipeline.forget("cup")
    tiny_pipeline.forget("box")
    assert tiny_pipeline.taught_classes == {"lid": 4}
    assert tiny_pipeline.teach("pen", _box_mask(24, 32), frame).class_id == 2  # the smallest free id
    with pytest.raises(UnknownClassError, match="unknown class 'cup'"):
        tiny_pipeline.forget("cup")
    tiny_pipeline.forget("pen")
    tiny_pipeline.forget("lid")
    assert tiny_pipeline.step(make_frame(24, 32)).labels is None


def test_class_ids_full(tiny_pipeline: Pipeline, make_frame: Frames) -> None:
    """Ids run from 2 to 254; the 254th taught class is refused until one is forgotten."""
    frame = make_frame(24, 32)
    empty = TaughtClasses.empty(tiny_pipeline.base.channels)
    rows = [nmap_row for nmap_row in tiny_pipeline.base.proxies("object")]
    objects = ProxySet(tuple(f"c{i}" for i in range(2, 255)), tuple(range(2, 255)),
                       tuple(r.repeat(253, 1) for r in rows))
    background = ProxySet(("4x4:0",), (0,), tuple(r[None] for r in rows))
    tiny_pipeline.restore_taught(TaughtClasses(objects, (background,) * 253))
    assert empty.names == ()
    with pytest.raises(InputError, match="class ids are full"):
        tiny_pipeline.teach("one-more", _box_mask(24, 32), frame)
    tiny_pipeline.forget("c100")
    assert tiny_pipeline.teach("one-more", _box_mask(24, 32), frame).class_id == 100


def test_reset_restores_base_and_keeps_taught(tiny_pipeline: Pipeline, make_frame: Frames) -> None:
    """reset: base proxies exactly as loaded, taught classes exactly as taught, no history."""
    _confident(tiny_pipeline)
    initial = tiny_pipeline.base
    tiny_pipeline.configure(alpha=0.2)
    tiny_pipeline.step(make_frame(24, 32))
    tiny_pipeline.teach("cup", _box_mask(24, 32))
    tiny_pipeline.teach("cup", _box_mask(24, 32), make_frame(24, 32, seed=5))  # adapted by teach
    tiny_pipeline.step(make_frame(24, 32, shift=(1, 0)))  # completes the first teach (follow-up)
    taught = tiny_pipeline.taught_state()
    tiny_pipeline.step(make_frame(24, 32, shift=(2, 0)))
    assert tiny_pipeline.adaptation_updates > 0
    assert not _same(initial, tiny_pipeline.base)

    tiny_pipeline.reset()

    assert _same(initial, tiny_pipeline.base)
    assert _same_taught(taught, tiny_pipeline.taught)
    assert tiny_pipeline.taught_classes == {"cup": 2}
    assert tiny_pipeline.adaptation_updates == 0
    assert tiny_pipeline.step(make_frame(24, 32)).flow_source == "none"
    tiny_pipeline.reset()  # also forgets the processed frames: teach needs a new one
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
    assert state.names == ("box", "lid") and state.ids == (3, 2)

    target = Pipeline.from_checkpoint(tiny_checkpoint)
    target.teach("old", _box_mask(24, 32), make_frame(24, 32))  # replaced by the restore
    target.restore_taught(state)
    assert target.taught_classes == {"box": 3, "lid": 2}
    assert _same_taught(target.taught_state(), state)
    frame = make_frame(24, 32, seed=9)
    assert np.array_equal(source.step(frame).labels, target.step(frame).labels)


def test_restore_taught_refuses_bad_states(tiny_pipeline: Pipeline, make_frame: Frames) -> None:
    """Other networks, ids out of range or colliding names are refused and change nothing."""
    tiny_pipeline.teach("cup", _box_mask(24, 32), make_frame(24, 32))
    state = tiny_pipeline.taught_state()
    other = ProxySet(state.names, state.ids, (torch.ones(1, 16), torch.ones(1, 16)))
    with pytest.raises(InputError, match="made with a different network"):
        tiny_pipeline.restore_taught(TaughtClasses(other, (ProxySet(("4x4:0",), (0,), other.weights),)))
    for names, ids, message in ((state.names, (1,), "out of range or taken"),
                                (state.names, (255,), "out of range or taken"),
                                (("object",), state.ids, "collide with the base classes")):
        bad = ProxySet(names, ids, state.objects.weights)
        with pytest.raises(InputError, match=message):
            tiny_pipeline.restore_taught(TaughtClasses(bad, state.backgrounds))
    assert tiny_pipeline.taught_classes == {"cup": 2}
    assert _same_taught(state, tiny_pipeline.taught_state())


def test_checkpoint_without_base_classes_is_refused() -> None:
    """A pipeline needs the background and object classes."""
    network = two_stream_network(width=0.0625, group_blocks=(1, 1, 1), class_names=("bg", "fg")).eval()
    with pytest.raises(UnknownClassError, match="unknown class 'background'"):
        Pipeline(Checkpoint(network=network, heads=build_heads(network), input=InputConfig(max_side=64)))


def test_a_taught_class_keeps_its_grid(tiny_pipeline: Pipeline, make_frame: Frames) -> None:
    """Changing taught_background_grid applies to classes taught after; a class taught before
    keeps (and adapts) the cells of its own grid."""
    _confident(tiny_pipeline)
    tiny_pipeline.configure(taught_alpha=0.5, taught_background_grid=2)
    tiny_pipeline.teach("cup", _box_mask(48, 64), _object_frame(make_frame))
    tiny_pipeline.configure(taught_background_grid=4)
    tiny_pipeline.teach("box", _box_mask(48, 64), _object_frame(make_frame))
    tiny_pipeline.step(_object_frame(make_frame, seed=3))
    tiny_pipeline.teach("cup", _box_mask(48, 64), _object_frame(make_frame, seed=4))  # adapts
    assert tiny_pipeline.taught.grid("cup") == 2 and tiny_pipeline.taught.grid("box") == 4
    assert all(cell.startswith("2x2:") for cell in tiny_pipeline.taught.background("cup").names)


def test_warm_up_leaves_a_fresh_pipeline(tiny_checkpoint: Path, make_frame: Frames) -> None:
    """warm_up runs the stages once and leaves no trace: the same masks as a fresh pipeline."""
    fresh, warmed = Pipeline.from_checkpoint(tiny_checkpoint), Pipeline.from_checkpoint(tiny_checkpoint)
    for pipeline in (fresh, warmed):
        pipeline.configure(alpha=0.2)
    assert warmed.warm_up(24, 32) > 0
    assert _same(fresh.base, warmed.base) and warmed.adaptation_updates == 0
    with pytest.raises(InputError, match="no frame processed yet"):
        warmed.teach("cup", _box_mask(24, 32))
    for shift in range(3):
        frame = make_frame(24, 32, shift=(shift, 0))
        a, b = fresh.step(frame), warmed.step(frame)
        assert a.flow_source == b.flow_source
        assert np.array_equal(a.mask, b.mask) and np.array_equal(a.probability, b.probability)


def test_without_labels_the_taught_classes_cost_nothing(tiny_pipeline: Pipeline, make_frame: Frames) -> None:
    """step(labels=False): no labels and no taught-class work (their proxies stay as taught)."""
    _confident(tiny_pipeline)
    tiny_pipeline.configure(taught_alpha=0.2)
    tiny_pipeline.teach("cup", _box_mask(48, 64), _object_frame(make_frame))
    taught = tiny_pipeline.taught
    result = tiny_pipeline.step(_object_frame(make_frame, seed=1), labels=False)
    assert result.labels is None and result.mask.shape == (48, 64)
    assert tiny_pipeline.taught is taught
    assert tiny_pipeline.step(_object_frame(make_frame, seed=2)).labels is not None
    assert tiny_pipeline.taught is not taught


def test_a_teach_without_motion_is_completed_on_the_next_moving_frame(
    tiny_pipeline: Pipeline, make_frame: Frames
) -> None:
    """Taught on a stream's first frame (no flow): the next frame with flow teaches the class
    again from its mask carried along the flow, once (taught_changed on that frame only), and
    the classes as taught change with it. Taught on a frame seen with flow: no follow-up."""
    tiny_pipeline.configure(taught_alpha=0.0)
    tiny_pipeline.step(make_frame(24, 32))
    tiny_pipeline.teach("cup", _box_mask(24, 32))
    before = tiny_pipeline.taught_state()
    assert tiny_pipeline.step(make_frame(24, 32, shift=(1, 0))).taught_changed
    after = tiny_pipeline.taught_state()
    assert not torch.equal(_rows(before, 0)[0], _rows(after, 0)[0])  # the object proxy moved
    assert not tiny_pipeline.step(make_frame(24, 32, shift=(2, 0))).taught_changed
    assert _same_taught(after, tiny_pipeline.taught_state())
    tiny_pipeline.teach("box", _box_mask(24, 32))  # the newest frame was seen with flow
    assert not tiny_pipeline.step(make_frame(24, 32, shift=(3, 0))).taught_changed
    # a frame given with the mask that is not the newest processed one: no follow-up either
    tiny_pipeline.teach("lid", _box_mask(24, 32), make_frame(24, 32, seed=7))
    assert not tiny_pipeline.step(make_frame(24, 32, shift=(4, 0))).taught_changed


def test_a_frame_given_with_its_flow_is_taught_as_the_network_saw_it(
    tiny_checkpoint: Path, make_frame: Frames
) -> None:
    """A processed frame given back with the flow it was seen with (``StepResult.small_flow``,
    as the node keeps it for teaching by stamp) teaches exactly what teaching that frame as the
    last processed one does, and needs no follow-up; with zero flow it would differ."""
    first, second = make_frame(48, 64), make_frame(48, 64, shift=(2, 1))
    kept = Pipeline.from_checkpoint(tiny_checkpoint)
    kept.step(first)
    assert kept.step(first).small_flow is not None  # the same frame again: zero DIS flow, but seen
    small = {}
    for name in ("last", "given"):
        pipeline = Pipeline.from_checkpoint(tiny_checkpoint)
        assert pipeline.step(first).small_flow is None  # a first frame is seen without flow
        small[name] = pipeline.step(second)
        if name == "last":
            pipeline.teach("cup", _box_mask(48, 64))
        else:
            pipeline.teach("cup", _box_mask(48, 64), second, small[name].small_flow)
        small[name + " taught"] = pipeline.taught_state()
        assert not pipeline.step(make_frame(48, 64, shift=(4, 2))).taught_changed
    assert np.abs(small["last"].small_flow).max() > 0.5  # the frame moved: the flow matters
    assert _same_taught(small["last taught"], small["given taught"])
    still = Pipeline.from_checkpoint(tiny_checkpoint)
    still.teach("cup", _box_mask(48, 64), second)
    assert not _same_taught(small["last taught"], still.taught_state())
    with pytest.raises(InputError, match=r"1 frame\(s\) but 2 flow\(s\)"):
        still.teach("lid", _box_mask(48, 64), second, [small["last"].small_flow] * 2)


def test_propagation_mixes_in_the_previous_frame_carried_along_the_flow(
    tiny_checkpoint: Path, make_frame: Frames
) -> None:
    """With propagation β (no CRF, no adaptation, zero flow), a frame's object probability is
    (1 - β) of its own plus β of the previous frame's; the first frame and the first after a
    reset have no previous one."""
    frames = [make_frame(48, 64, seed=s) for s in range(2)]
    still = np.zeros((48, 64, 2), np.float32)
    plain = Pipeline.from_checkpoint(tiny_checkpoint,
                                     config=PipelineConfig(crf=False, adapt=False, propagation=0.0))
    own = [plain.step(frame, still).probability for frame in frames]
    mixed = Pipeline.from_checkpoint(tiny_checkpoint,
                                     config=PipelineConfig(crf=False, adapt=False, propagation=0.3))
    np.testing.assert_array_equal(mixed.step(frames[0], still).probability, own[0])
    np.testing.assert_allclose(mixed.step(frames[1], still).probability, 0.7 * own[1] + 0.3 * own[0],
                               atol=1e-6)
    mixed.reset()
    np.testing.assert_array_equal(mixed.step(frames[1], still).probability, own[1])


def test_the_crf_worker_runs_only_on_a_core_of_its_own() -> None:
    """The CRF's lattice is built in a worker thread only on the CPU and when torch's threads
    leave a core free (the node's default, one fewer than the cores)."""
    assert spare_core("cpu", 1, 2)
    assert not spare_core("cpu", 2, 2)
    assert not spare_core("cpu", 4, 2)
    assert not spare_core("cuda", 1, 16)
