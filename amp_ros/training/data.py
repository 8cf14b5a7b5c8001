"""Training data: DAVIS-layout sequences held in memory at the training size, with cached flow.

A dataset folder has ``JPEGImages/<seq>/NNNNN.jpg`` and ``Annotations/<seq>/NNNNN.png`` (masks
0/255), optionally with a resolution level (``JPEGImages/480p/<seq>/``, as DAVIS ships it).
Every frame must be annotated. Frames are shrunk once, exactly as the pipeline shrinks them
(``amp_ros.inference.shrink_frame``), and kept in memory.

Flow, as the pipeline computes it: DIS (preset ``medium``, the pipeline's default) from the
previous small frame to the current one, in the previous frame's pixel grid. Frame 0 has no
previous frame; its flow is stored as zeros, which is also what the pipeline feeds on a stream's
first frame (training samples never use frame 0 as the target, validation skips it too). Flow is
computed once per (dataset, sequence, max_side) and cached as float16 ``.npy`` under
``<cache>/flow/<dataset>/<seq>/<max_side>/<frame stem>.npy``; files already there are reused,
so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from amp_ros.atomic_write import atomic_path
from amp_ros.datasets import (
    davis_sequences,
    load_davis,
    read_davis_mask,
    read_frame,
)
from amp_ros.errors import InputError
from amp_ros.flow import compute_dis_flow
from amp_ros.inference import shrink_frame

DIS_PRESET = "medium"  # the pipeline's default (PipelineConfig.dis_preset)
DEFAULT_CACHE = Path(".cache")


@dataclass
class SequenceData:
    """One sequence at the training size.

    frames: T × (h×w×3 uint8 RGB); masks: T × (h×w uint8, 1 = object, 0 = background);
    flows: T × (h×w×2 float16, flow from frame t−1 to t; zeros for t = 0).
    """

    dataset: str
    name: str
    frames: list[np.ndarray]
    masks: list[np.ndarray]
    flows: list[np.ndarray] = field(default_factory=list)

    @property
    def key(self) -> str:
        """``dataset/name``, unique over all data folders."""
        return f"{self.dataset}/{self.name}"

    def __len__(self) -> int:
        return len(self.frames)


def dataset_name(root: str | Path) -> str:
    """The name a data folder goes by (its folder name)."""
    return Path(root).resolve().name


def list_sequences(root: str | Path) -> list[str]:
    """Sequence names of a DAVIS-layout folder (those with annotations), sorted."""
    return davis_sequences(root)


def sequence_files(root: str | Path, name: str) -> tuple[list[Path], list[Path]]:
    """(frame paths, mask paths) of one sequence, in frame order; every frame needs a mask."""
    (sequence,) = load_davis(root, sequences=[name])
    frames = list(sequence.frames)  # load_davis: at least one mask, each with its frame
    masks = dict(zip(sequence.gt_frames, sequence.gt_paths, strict=True))
    missing = [p.name for i, p in enumerate(frames) if i not in masks]
    if missing:
        raise InputError(
            f"sequence {name!r}: frame(s) {missing[:3]} have no mask in "
            f"{sequence.gt_paths[0].parent}"
        )
    return frames, [masks[i] for i in range(len(frames))]


def read_training_frame(path: Path, max_side: int) -> np.ndarray:
    """A frame as RGB, shrunk to the training size as the pipeline shrinks it."""
    return shrink_frame(read_frame(path), max_side)


def read_training_mask(path: Path, size: tuple[int, int]) -> np.ndarray:
    """Mask as h×w uint8 0/1 (read_davis_mask), area-resized then thresholded at 0.5."""
    binary = read_davis_mask(path).astype(np.float32)
    if binary.shape != size:
        binary = cv2.resize(binary, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return (binary >= 0.5).astype(np.uint8)


def flow_cache_dir(cache: str | Path, dataset: str, name: str, max_side: int) -> Path:
    """Where the flow of one sequence at one training size is cached."""
    return Path(cache) / "flow" / dataset / name / str(max_side)


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, tmp.open("wb") as handle:
        np.save(handle, array)


def _load_flow(path: Path, shape: tuple[int, int]) -> np.ndarray | None:
    try:
        flow = np.load(path)
    except (OSError, ValueError):
        return None  # a damaged file is recomputed
    return flow if flow.shape == (*shape, 2) else None


def load_sequence(
    root: str | Path,
    name: str,
    max_side: int,
    *,
    cache: str | Path | None = DEFAULT_CACHE,
    progress: tqdm | None = None,
) -> SequenceData:
    """Read one sequence at the training size, with its flow (from the cache or computed)."""
    frame_paths, mask_paths = sequence_files(root, name)
    dataset = dataset_name(root)
    frames = [read_training_frame(p, max_side) for p in frame_paths]
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise InputError(f"sequence {name!r}: frames differ in size {sorted(shapes)}")
    size = frames[0].shape[:2]
    masks = [read_training_mask(p, size) for p in mask_paths]
    folder = flow_cache_dir(cache, dataset, name, max_side) if cache is not None else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    flows = []
    for t, path in enumerate(frame_paths):
        cached = folder / f"{path.stem}.npy" if folder is not None else None
        flow = _load_flow(cached, size) if cached is not None and cached.is_file() else None
        if flow is None:
            if t == 0:
                flow = np.zeros((*size, 2), np.float16)
            else:
                flow = compute_dis_flow(frames[t - 1], frames[t], DIS_PRESET).astype(np.float16)
            if cached is not None:
                _save_npy(cached, flow)
        flows.append(flow)
        if progress is not None:
            progress.update(1)
    return SequenceData(dataset=dataset, name=name, frames=frames, masks=masks, flows=flows)


def count_frames(root: str | Path, names: Iterable[str]) -> int:
    """Number of frames of the named sequences (for a progress bar)."""
    return sum(len(sequence_files(root, n)[0]) for n in names)


def load_sequences(
    selection: Sequence[tuple[str | Path, str]],
    max_side: int,
    *,
    cache: str | Path | None = DEFAULT_CACHE,
    show_progress: bool = True,
) -> list[SequenceData]:
    """Load (data folder, sequence name) pairs, computing missing flow with a progress bar."""
    total = sum(count_frames(root, [name]) for root, name in selection)
    with tqdm(total=total, desc="frames+flow", unit="frame", disable=not show_progress,
              mininterval=5.0) as bar:
        return [load_sequence(root, name, max_side, cache=cache, progress=bar)
                for root, name in selection]
