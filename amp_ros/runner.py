"""Run the segmentation pipeline over dataset sequences and write their result masks (no ROS).

:func:`segment` is the whole offline protocol: one :class:`~amp_ros.pipeline.Pipeline`, reset at
the start of each sequence, stepped over every frame in order; each mask goes to
``<results>/<seq>/<frame>.png`` (:mod:`amp_ros.datasets.results`). :func:`run_offline` builds
that pipeline from :class:`RunSettings`.

Two protocols: *unsupervised* (the default: the moving-object mask, no label at all) and
*teach the first frames* (``teach_shots = K``, the semi-supervised DAVIS-2016 setting for
K = 1): after stepping frames 0…K−1 the pipeline is taught class ``target`` from their ground
truth (``Pipeline.teach`` on the last K frames), and every later frame's result is the taught
class's pixels of ``labels``; the K given frames keep their ground truth as their result and
are not scored.

A *runner* is any ``(sequences, results_dir, settings, *, progress) -> RunStats``; ``amp-eval``
picks one by ``--via``. This module has the ``offline`` one; the ``ros`` one (bags replayed
through the node) lives in :mod:`amp_ros.ros.eval_run`, so that nothing outside ``amp_ros.ros``
imports ROS.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from amp_ros.datasets import VideoSequence, read_frame
from amp_ros.datasets.results import write_result
from amp_ros.errors import InputError
from amp_ros.models import resolve_checkpoint
from amp_ros.provenance import checkpoint_label

if TYPE_CHECKING:
    from amp_ros.pipeline import Pipeline


@dataclass
class RunStats:
    """How many frames were segmented and the seconds spent segmenting them."""

    frames: int = 0
    seconds: float = 0.0

    @property
    def fps(self) -> float:
        """Frames per second of pipeline time (0 when nothing ran)."""
        return self.frames / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class RunSettings:
    """Which model, which path (offline or through the node) and which pipeline switches."""

    checkpoint: str | Path | None = None  # shipped model name or folder; None = default
    via: str = "offline"
    crf: bool = True
    adapt: bool = True
    device: str = "cpu"
    head_levels: tuple[int, ...] | None = None
    teach_shots: int = 0  # 0: unsupervised; K: teach from the first K frames' ground truth
    motion: bool = True  # False (ablation, offline only): the motion stream sees zero flow
    max_side: int = 0  # processing size (longer side, px); 0 = the checkpoint's
    overrides: tuple[tuple[str, object], ...] = ()  # pipeline settings by parameter name

    def pipeline_values(self) -> dict[str, object]:
        """The pipeline settings by node parameter name: these switches, then the overrides."""
        values: dict[str, object] = {"crf": self.crf, "taught_crf": self.crf, "adapt": self.adapt}
        if self.max_side:
            values["max_side"] = self.max_side  # the node's parameter of the same name
        values.update(self.overrides)
        return values

    def pipeline_settings(self) -> dict[str, object]:
        """Every pipeline setting this run uses, by node parameter name: the defaults, then
        :meth:`pipeline_values` (recorded whole, so that a later change of a default does not
        change what an old metrics.json says)."""
        from amp_ros.setting_fields import flatten
        from amp_ros.settings import PipelineConfig

        values = {s.name: s.default for s in flatten(PipelineConfig)}
        values.update(self.pipeline_values())
        values.pop("max_side", None)  # a checkpoint input setting, as in the node
        return values

    def checkpoint_path(self) -> Path:
        """The checkpoint to use: the given one or the node's default model."""
        return resolve_checkpoint(self.checkpoint)

    def describe(self) -> dict[str, object]:
        """JSON-ready record of the settings, for metrics.json (the checkpoint by name or
        repo-relative path: :func:`amp_ros.provenance.checkpoint_label`)."""
        described = {"checkpoint": checkpoint_label(self.checkpoint_path()), "via": self.via,
                     "crf": self.crf, "adapt": self.adapt, "device": self.device,
                     "head_levels": list(self.head_levels) if self.head_levels else "all"}
        if not self.motion:
            described["motion"] = "zero flow (ablation)"
        if self.max_side:
            described["max_side"] = self.max_side
        if self.teach_shots:
            described["protocol"] = f"teach the first {self.teach_shots} frame(s)"
        if self.overrides:
            described["settings"] = dict(self.overrides)
        described["pipeline"] = self.pipeline_settings()
        return described


Runner = Callable[..., RunStats]
"""``runner(sequences, results_dir, settings, *, progress=True) -> RunStats``."""


TAUGHT_LABEL = "target"


def segment(
    pipeline: Pipeline, sequences: Sequence[VideoSequence], results_dir: Path, *,
    progress: bool = True, teach_shots: int = 0, motion: bool = True,
) -> RunStats:
    """Segment every frame of every sequence with ``pipeline``; masks go to
    ``results_dir/<seq>/<frame>.png``. The pipeline is reset before each sequence.

    teach_shots K > 0: the teach-the-first-frames protocol (module docstring); the taught class
    is forgotten again at the end of each sequence. ``motion=False`` (ablation) gives every
    frame zero flow, so the network runs on appearance alone.
    """
    stats = RunStats()
    for sequence in sequences:
        pipeline.reset()
        given = first_masks(sequence, teach_shots)
        class_id = None
        frames = tqdm(range(len(sequence.frames)), desc=sequence.name, disable=not progress,
                      unit="frame", leave=False)
        for index in frames:
            frame = read_frame(sequence.frames[index])
            start = time.perf_counter()
            result = pipeline.step(frame, None if motion else np.zeros((*frame.shape[:2], 2), np.float32))
            if index + 1 == teach_shots:
                class_id = pipeline.teach(TAUGHT_LABEL, given).class_id
            stats.seconds += time.perf_counter() - start
            stats.frames += 1
            if index < teach_shots:
                mask = given[index]
            elif class_id is not None:
                mask = result.labels == class_id
            else:
                mask = result.mask
            write_result(results_dir, sequence, index, mask)
        if class_id is not None:
            pipeline.forget(TAUGHT_LABEL)
    return stats


def first_masks(sequence: VideoSequence, count: int) -> list[np.ndarray]:
    """The ground truth of frames 0…count−1 (every one must be annotated), H×W bool each."""
    by_frame = {frame: k for k, frame in enumerate(sequence.gt_frames)}
    missing = [i for i in range(count) if i not in by_frame]
    if missing or count > len(sequence.frames):
        raise InputError(f"sequence {sequence.name!r}: teaching needs the ground truth of frames "
                         f"0…{count - 1}, missing {missing or 'frames'}")
    return [sequence.read_gt(by_frame[i]) for i in range(count)]


def run_offline(
    sequences: Sequence[VideoSequence], results_dir: Path, settings: RunSettings, *,
    progress: bool = True,
) -> RunStats:
    """The ``offline`` runner: the settings' pipeline, called directly (see :func:`segment`)."""
    from amp_ros.pipeline import Pipeline  # torch: loaded only when segmenting
    from amp_ros.setting_fields import build
    from amp_ros.settings import PipelineConfig

    config = replace(build(PipelineConfig, settings.pipeline_settings()), head_levels=settings.head_levels)
    pipeline = Pipeline.from_checkpoint(settings.checkpoint_path(), device=settings.device, config=config)
    if settings.max_side:
        pipeline.checkpoint.input = replace(pipeline.checkpoint.input, max_side=settings.max_side)
    return segment(pipeline, sequences, results_dir, progress=progress,
                   teach_shots=settings.teach_shots, motion=settings.motion)


RUNNERS: Mapping[str, Runner] = {"offline": run_offline}
"""The runners available without ROS (``amp_ros.ros.eval_run.RUNNERS`` adds ``ros``)."""

VIAS = ("offline", "ros")
"""Every ``--via`` the CLIs accept; which of them can run depends on the runners given."""


def run_sequences(
    sequences: Sequence[VideoSequence], results_dir: Path, settings: RunSettings, *,
    runners: Mapping[str, Runner] = RUNNERS, progress: bool = True,
) -> RunStats:
    """Segment ``sequences`` with the runner ``settings.via`` names, taken from ``runners``."""
    runner = runners.get(settings.via)
    if runner is None:
        raise InputError(
            f"--via {settings.via} is not available from this ROS-free entry point; run the one "
            f"under amp_ros.ros (amp-eval = python -m amp_ros.ros.eval_cli, make demo = "
            f"python -m amp_ros.ros.demo)"
        )
    return runner(sequences, results_dir, settings, progress=progress)
