"""The offline runner's ablation switches: zero flow (--no-motion) and the processing size."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from amp_ros.datasets import load_davis
from amp_ros.datasets.results import read_result_mask, sequence_result_path
from amp_ros.eval_cli import main
from amp_ros.pipeline import Pipeline
from amp_ros.runner import RunSettings, run_offline, segment

Frames = Callable[..., np.ndarray]


@pytest.fixture
def clip(tmp_path: Path, make_frame: Frames) -> Path:
    """One DAVIS-layout sequence of 4 moving-texture frames (48×64) with box masks."""
    root = tmp_path / "davis"
    for t in range(4):
        frame = make_frame(48, 64, shift=(2 * t, 0))
        mask = np.zeros((48, 64), np.uint8)
        mask[10:30, 10 + 2 * t:30 + 2 * t] = 255
        for kind, image, ext in (("JPEGImages", frame[:, :, ::-1], "jpg"), ("Annotations", mask, "png")):
            path = root / kind / "480p" / "seq" / f"{t:05d}.{ext}"
            path.parent.mkdir(parents=True, exist_ok=True)
            assert cv2.imwrite(str(path), image)
    return root


def result(folder: Path, sequence: object, index: int) -> np.ndarray:
    return read_result_mask(sequence_result_path(folder, sequence, index)) > 0


def test_no_motion_steps_every_frame_with_zero_flow(
    tiny_checkpoint: Path, clip: Path, tmp_path: Path
) -> None:
    sequence = load_davis(clip)[0]
    segment(Pipeline.from_checkpoint(tiny_checkpoint), [sequence], tmp_path / "a", progress=False,
            motion=False)
    reference = Pipeline.from_checkpoint(tiny_checkpoint)
    for index, path in enumerate(sequence.frames):
        frame = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        stepped = reference.step(frame, np.zeros((*frame.shape[:2], 2), np.float32))
        assert stepped.flow_source == "given"
        assert np.array_equal(result(tmp_path / "a", sequence, index), stepped.mask > 0)


def test_max_side_sets_the_processing_size(tiny_checkpoint: Path, clip: Path, tmp_path: Path) -> None:
    settings = RunSettings(checkpoint=tiny_checkpoint, max_side=32)
    assert settings.pipeline_values()["max_side"] == 32  # the node's parameter, for --via ros
    assert settings.describe()["max_side"] == 32
    sequence = load_davis(clip)[0]
    run_offline([sequence], tmp_path / "small", settings, progress=False)
    run_offline([sequence], tmp_path / "default", RunSettings(checkpoint=tiny_checkpoint), progress=False)
    frames = range(len(sequence.frames))
    small, default = ([result(tmp_path / d, sequence, i) for i in frames] for d in ("small", "default"))
    assert any(not np.array_equal(a, b) for a, b in zip(small, default))
    # The same masks as a pipeline whose checkpoint says 32 px.
    reference = Pipeline.from_checkpoint(tiny_checkpoint)
    reference.checkpoint.input = replace(reference.checkpoint.input, max_side=32)
    for index, path in enumerate(sequence.frames):
        frame = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        assert np.array_equal(result(tmp_path / "small", sequence, index), reference.step(frame).mask > 0)


@pytest.mark.parametrize("options, message", [
    (["--max-side", "8"], "--max-side must lie"),
    (["--no-motion", "--via", "ros"], "--no-motion is an offline ablation"),
])
def test_bad_ablation_options_are_refused(
    clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], message: str
) -> None:
    assert main(["davis", "--root", str(clip), "--out", str(tmp_path / "out"), *options]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()



def test_every_pipeline_setting_is_recorded() -> None:
    """metrics.json's config records every pipeline setting the run used (defaults included),
    with the switches and overrides applied, so that it still says what ran after a default
    changes; the processing size stays a checkpoint setting of its own."""
    settings = RunSettings(checkpoint="efficientnet-lite0", crf=False, max_side=64,
                           overrides=(("crf_iterations", 7), ("alpha", 0.0)))
    recorded = settings.describe()["pipeline"]
    assert recorded["crf"] is False and recorded["taught_crf"] is False and recorded["adapt"] is True
    assert recorded["crf_iterations"] == 7 and recorded["alpha"] == 0.0
    assert recorded["crf_bilateral_compat"] == 4.0 and "max_side" not in recorded
    assert RunSettings(checkpoint="efficientnet-lite0").describe()["pipeline"]["crf_iterations"] == 5
