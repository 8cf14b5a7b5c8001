"""Which sequences train and validate, and the augmented samples drawn from the training ones.

Cross-validation: the DAVIS-2016 val sequences are the held-out test set and are not used at
all; six DAVIS-2016 *train* sequences (:data:`~amp_ros.training.folds.VAL_SEQUENCES`, or another
fold of :mod:`~amp_ros.training.folds`) are held out for validation.
:func:`split_sequences` is the one train/validation split (``amp-train`` and the imprint check).

:class:`SampleSource` draws supervised samples (:meth:`~SampleSource.sample`, with object
pasting and synthetic camera motion) and episodes (:meth:`~SampleSource.pair`: support and query
frames of one sequence) at the crop size, and batches them as network inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from amp_ros.checkpoint import InputConfig
from amp_ros.flow import render_motion
from amp_ros.inference import to_tensor
from amp_ros.training import TrainingError, augment
from amp_ros.training.data import SequenceData, list_sequences

MIN_PASTE_COVER = 0.01  # a frame's object is pasted only if it covers at least 1 % of it
SELF_PASTE_PROB = 0.2  # chance of keeping a paste drawn from the target's own sequence
PATCH_JITTER_PROB = 0.5  # chance of photometric jitter on a pasted object
PATCH_FLIP_PROB = 0.5  # chance of mirroring a pasted object
HFLIP_PROB = 0.5  # chance of mirroring a sample (frame, flow and label)
CAMERA_MAX_SHIFT = 0.015  # synthetic camera motion: at most this × the longer side, in pixels
EPISODE_JITTER = 0.5  # strength of the photometric jitter of episode frames
PAIR_DRAWS = 100  # tries to find an episode whose two crops both hold object and background


def split_sequences(
    data: Sequence[str], sequences: Sequence[str] | None, val_sequences: Sequence[str]
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(train, val) lists of (folder, sequence). Val names are searched in every folder (first
    match); they never enter training. A requested name found nowhere is a
    :class:`~amp_ros.training.TrainingError`, and so is an empty training set."""
    available = [(root, name) for root in data for name in list_sequences(root)]
    val: list[tuple[str, str]] = []
    for name in val_sequences:
        match = next(((r, n) for r, n in available if n == name), None)
        if match is None:
            raise TrainingError(f"validation sequence {name!r} is in none of {list(data)}")
        val.append(match)
    held = set(val)
    if sequences is not None:
        missing = sorted(set(sequences) - {n for _, n in available})
        if missing:
            raise TrainingError(f"training sequence(s) {missing} are in none of {list(data)}")
        train = [(r, n) for r, n in available if n in set(sequences) and (r, n) not in held]
    else:
        train = [(r, n) for r, n in available if (r, n) not in held]
    if not train:
        raise TrainingError("no training sequences left")
    return train, val


@dataclass(frozen=True)
class SamplingOptions:
    """What the sampler depends on (``amp-train`` options of the same names)."""

    crop: tuple[int, int]
    aux_weight: float = 0.15
    paste_prob: float = 0.5
    camera_prob: float = 0.3
    support_zero_flow: float = 0.5
    still_paste_prob: float = 0.0


Sample = tuple[np.ndarray, np.ndarray, np.ndarray]


class SampleSource:
    """Draws augmented (frame, flow, label) samples from the training sequences.

    ``main_dataset`` (the first ``--data`` folder's name) is drawn with the probability left
    over by the auxiliary datasets, each drawn with ``aux_weight``; objects to paste and episodes
    come from the main set.
    """

    def __init__(self, sequences: Sequence[SequenceData], options: SamplingOptions,
                 rng: np.random.Generator, main_dataset: str):
        self.options = options
        self.rng = rng
        groups: dict[str, list[SequenceData]] = {}
        for seq in sequences:
            if len(seq) >= 2:
                groups.setdefault(seq.dataset, []).append(seq)
        if not groups:
            raise TrainingError("every training sequence has fewer than 2 frames")
        self.groups = list(groups.values())
        names = list(groups)
        weights = np.array([0.0 if n == main_dataset else options.aux_weight for n in names])
        main_share = 1.0 - weights.sum()
        if main_dataset in groups:
            weights[names.index(main_dataset)] = main_share
        else:  # no main set among the training sequences: share equally
            weights = np.full(len(names), 1.0 / len(names))
        self.weights = weights / weights.sum()
        sources = groups.get(main_dataset, [s for g in self.groups for s in g])
        self.paste_sources = [
            (seq, t) for seq in sources for t, m in enumerate(seq.masks)
            if m.mean() >= MIN_PASTE_COVER
        ]

    def sample(self) -> Sample:
        """One augmented sample at the crop size: frame, flow (float32), label (uint8, 255 ignore)."""
        rng, opt = self.rng, self.options
        group = self.groups[rng.choice(len(self.groups), p=self.weights)]
        lengths = np.array([len(s) - 1 for s in group], dtype=np.float64)
        seq = group[rng.choice(len(group), p=lengths / lengths.sum())]
        t = int(rng.integers(1, len(seq)))
        frame = seq.frames[t]
        flow = seq.flows[t].astype(np.float32)
        label = seq.masks[t].copy()
        if self.paste_sources and rng.random() < opt.paste_prob:
            frame, flow, label = self._paste(seq, frame, flow, label)
        # drawn only when asked for, so that runs without it keep their random stream
        if self.paste_sources and opt.still_paste_prob and rng.random() < opt.still_paste_prob:
            frame, label = self._paste_still(frame, flow, label)
        if rng.random() < opt.camera_prob:
            flow = augment.camera_motion(flow, rng, max_shift=CAMERA_MAX_SHIFT * max(label.shape))
        frame, flow, label = augment.scale_crop(frame, flow, label, opt.crop, rng)
        if rng.random() < HFLIP_PROB:
            frame, flow, label = augment.hflip(frame, flow, label)
        frame = augment.photometric(frame, rng)
        return frame, flow, label

    def _paste(self, seq: SequenceData, frame: np.ndarray, flow: np.ndarray,
               label: np.ndarray) -> Sample:
        """Paste a random object (with a known synthetic motion) onto the sample, or not."""
        rng = self.rng
        src_seq, src_t = self.paste_sources[rng.integers(len(self.paste_sources))]
        if src_seq is seq and rng.random() >= SELF_PASTE_PROB:
            return frame, flow, label
        patch = self._patch(src_seq, src_t)
        if patch is None:
            return frame, flow, label
        motion = augment.random_motion(patch[1].shape, label.shape, rng)
        return augment.paste_object(frame, flow, label, patch, motion)

    def _paste_still(self, frame: np.ndarray, flow: np.ndarray,
                     label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Paste a random object that stays still against the background, as background."""
        rng = self.rng
        src_seq, src_t = self.paste_sources[rng.integers(len(self.paste_sources))]
        patch = self._patch(src_seq, src_t)
        if patch is None:
            return frame, label
        placement = augment.random_motion(patch[1].shape, label.shape, rng)
        return augment.paste_still_object(frame, flow, label, patch, placement)

    def _patch(self, seq: SequenceData, t: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Frame ``t``'s object of ``seq`` as a patch (rgb, alpha) to paste, jittered and
        mirrored at random; None when the object is too small."""
        patch = augment.object_patch(seq.frames[t], seq.masks[t])
        if patch is None:
            return None
        rgb, alpha = patch
        if self.rng.random() < PATCH_JITTER_PROB:
            rgb = augment.photometric(rgb, self.rng)
        if self.rng.random() < PATCH_FLIP_PROB:
            rgb, alpha = rgb[:, ::-1].copy(), alpha[:, ::-1].copy()
        return rgb, alpha

    def pair(self) -> tuple[Sample, Sample]:
        """An episode: (support, query) samples of two frames of one main-set sequence, each
        cropped and jittered on its own; both crops hold object and background pixels."""
        rng, opt = self.rng, self.options
        if not self.paste_sources:
            raise TrainingError("no training frame has an object to build episodes from")
        for _ in range(PAIR_DRAWS):
            seq, t_support = self.paste_sources[rng.integers(len(self.paste_sources))]
            t_query = int(rng.integers(1, len(seq)))
            if t_query == t_support:
                continue
            samples = []
            for role, t in enumerate((t_support, t_query)):
                flow = seq.flows[t].astype(np.float32)
                if role == 0 and rng.random() < opt.support_zero_flow:
                    flow = np.zeros_like(flow)
                frame, flow, label = augment.scale_crop(seq.frames[t], flow, seq.masks[t].copy(),
                                                        opt.crop, rng)
                if rng.random() < HFLIP_PROB:
                    frame, flow, label = augment.hflip(frame, flow, label)
                samples.append((augment.photometric(frame, rng, EPISODE_JITTER), flow, label))
            if all((s[2] == 1).any() and (s[2] == 0).any() for s in samples):
                return samples[0], samples[1]
        raise TrainingError(
            f"found no frame pair with object and background in {PAIR_DRAWS} draws"
        )

    def batch(self, size: int, input_config: InputConfig) -> tuple[torch.Tensor, ...]:
        """N×3×h×w image, N×3×h×w flow rendering (normalised like inference) and N×h×w labels."""
        return _stack([self.sample() for _ in range(size)], input_config)

    def episode_batch(self, size: int, input_config: InputConfig) -> tuple[torch.Tensor, ...]:
        """``size`` episodes: support image, flow rendering, labels, then the same for the query."""
        supports, queries = [], []
        for _ in range(size):
            support, query = self.pair()
            supports.append(support)
            queries.append(query)
        return (*_stack(supports, input_config), *_stack(queries, input_config))


def _stack(samples: Sequence[Sample], input_config: InputConfig) -> tuple[torch.Tensor, ...]:
    """Network inputs of samples: images, flow renderings (N×3×h×w each) and labels (N×h×w)."""
    images = [to_tensor(frame, input_config) for frame, _, _ in samples]
    motions = [to_tensor(render_motion(flow, input_config.motion), input_config) for _, flow, _ in samples]
    labels = [torch.from_numpy(label.astype(np.int64)) for _, _, label in samples]
    return torch.cat(images), torch.cat(motions), torch.stack(labels)
