"""Validation: J with the learned heads and one-shot J with proxies imprinted from frame 0.

Both are measured with :func:`amp_ros.inference.predict`, i.e. exactly the inputs the pipeline
gives the network, at the training size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

from amp_ros.checkpoint import InputConfig
from amp_ros.evaluation.measures import jaccard
from amp_ros.inference import class_logits, predict
from amp_ros.proxy_set import ProxySet
from amp_ros.training.data import SequenceData
from amp_ros.training.episodes import episode_logits
from amp_ros.training.model import TrainingModel

DEFAULT_STRIDE = 2  # validate every 2nd frame
TAUGHT_OBJECT = 1  # the object's row in the episode logits (row 0 is the background)
OBJECT = "object"


class ValidationResult(NamedTuple):
    """Mean J over sequences and J per sequence (``dataset/name``), learned heads and one-shot."""

    j: float
    per_sequence: dict[str, float]
    one_shot_j: float
    one_shot_per_sequence: dict[str, float]


def validation_frames(length: int, stride: int = DEFAULT_STRIDE) -> range:
    """Frames 1, 1+stride, … before the last (DAVIS skips the first and last); all of a sequence
    of at most two frames."""
    return range(1, length - 1, stride) if length > 2 else range(length)


def validate(
    model: TrainingModel, sequences: Sequence[SequenceData], input_config: InputConfig,
    stride: int = DEFAULT_STRIDE, proxies: ProxySet | None = None,
) -> ValidationResult:
    """Validation J with the learned heads (or ``proxies``) and one-shot J with imprinted ones.

    Learned: mean over sequences of the mean J over :func:`validation_frames`, object = argmax
    of the logits of the heads' proxy set (or of ``proxies``, e.g. imprinted ones), at the
    training size. One-shot: object and background proxies imprinted from
    frame 0's mask (seen with zero flow, as a stream's first frame), the same frames classified
    with them alone (the core of ``/amp/teach``, without its background cells, search window,
    CRF and adaptation); sequences whose frame 0 lacks object or
    background pixels are left out of it.
    """
    was_training = model.training
    model.eval()
    # predict returns features on the CPU: compare them with proxies there
    proxies = (proxies if proxies is not None else model.classifier.proxy_set()).to("cpu")
    row = proxies.index(OBJECT)
    scale = model.classifier.scale.cpu()
    per_sequence: dict[str, float] = {}
    one_shot: dict[str, float] = {}
    try:
        for seq in sequences:
            support = predict(model.network, seq.frames[0],
                              np.zeros((*seq.masks[0].shape, 2), np.float32), input_config)
            support_labels = torch.from_numpy(seq.masks[0].astype(np.int64))[None]
            has_both = bool(seq.masks[0].any() and not seq.masks[0].all())
            scores, taught = [], []
            for t in validation_frames(len(seq), stride):
                pred = predict(model.network, seq.frames[t], seq.flows[t].astype(np.float32),
                               input_config)
                obj = (class_logits(pred, proxies, scale).argmax(0) == row).numpy()
                scores.append(jaccard(obj, seq.masks[t]))
                if has_both:
                    with torch.no_grad():
                        logits = episode_logits([f[None] for f in support.features],
                                                support_labels,
                                                [f[None] for f in pred.features], scale, pred.size)
                    taught.append(jaccard((logits[0].argmax(0) == TAUGHT_OBJECT).numpy(),
                                          seq.masks[t]))
            per_sequence[seq.key] = float(np.mean(scores))
            if taught:
                one_shot[seq.key] = float(np.mean(taught))
    finally:
        model.train(was_training)
    return ValidationResult(
        float(np.mean(list(per_sequence.values()))), per_sequence,
        float(np.mean(list(one_shot.values()))) if one_shot else 0.0, one_shot,
    )
