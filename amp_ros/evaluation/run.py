"""Run the segmentation pipeline over dataset sequences and write DAVIS-layout result masks.

``offline`` calls the pipeline directly; ``ros`` converts each sequence to a rosbag2, starts the
real ``amp_vos`` node and replays the bag through it in lockstep. Both feed the node/pipeline
the same frames and let it compute its own flow, so they give the same masks.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from amp_ros.datasets import VideoSequence, read_frame, write_mask
from amp_ros.errors import InputError
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


def segment_offline(
    pipeline: Pipeline, sequences: Sequence[VideoSequence], masks_dir: Path, *, progress: bool = True
) -> RunStats:
    """Segment every frame of every sequence with ``pipeline``; masks go to masks_dir/<seq>/."""
    stats = RunStats()
    for sequence in sequences:
        pipeline.reset()
        frames = tqdm(range(len(sequence.frames)), desc=sequence.name, disable=not progress,
                      unit="frame", leave=False)
        for index in frames:
            frame = read_frame(sequence.frames[index])
            start = time.perf_counter()
            result = pipeline.step(frame)
            stats.seconds += time.perf_counter() - start
            stats.frames += 1
            write_mask(sequence.result_path(masks_dir, index), result.mask)
    return stats


@dataclass(frozen=True)
class RunSettings:
    """Which model, which path (offline or through the node) and which pipeline switches."""

    checkpoint: str | Path | None = None  # shipped model name or folder; None = default
    via: str = "offline"
    crf: bool = True
    adapt: bool = True
    device: str = "cpu"
    head_levels: tuple[int, ...] | None = None

    def checkpoint_path(self) -> Path:
        """The checkpoint to use: the given one or the node's default model."""
        from amp_ros.models import resolve_checkpoint

        return resolve_checkpoint(self.checkpoint)

    def describe(self) -> dict[str, object]:
        """JSON-ready record of the settings, for metrics.json."""
        return {"checkpoint": str(self.checkpoint_path()), "via": self.via, "crf": self.crf,
                "adapt": self.adapt, "device": self.device,
                "head_levels": list(self.head_levels) if self.head_levels else "all"}


def run_sequences(
    sequences: Sequence[VideoSequence], masks_dir: Path, settings: RunSettings, *, progress: bool = True
) -> RunStats:
    """Segment ``sequences`` the way ``settings`` says; masks go to masks_dir/<seq>/<frame>.png."""
    if settings.via == "ros":
        if settings.head_levels is not None:
            raise InputError("--levels is an offline ablation; the node always uses every level")
        from amp_ros.evaluation.ros_run import segment_via_ros

        return segment_via_ros(sequences, masks_dir, settings, progress=progress)
    pipeline = Pipeline.from_checkpoint(settings.checkpoint_path(), device=settings.device)
    pipeline.configure(crf=settings.crf, adapt=settings.adapt, head_levels=settings.head_levels)
    return segment_offline(pipeline, sequences, masks_dir, progress=progress)
