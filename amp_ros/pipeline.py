"""The per-video segmentation pipeline: the one object the node, the evaluation and the demo use.

Stateless network + per-video state (the proxies, the previous frame), as in Cutie:
``step(frame, flow=None)`` segments one frame and self-adapts the proxies; ``teach``,
``forget`` and ``reset`` change the classes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import torch

from amp_ros.checkpoint import Checkpoint, load_checkpoint
from amp_ros.classifier import ClassifierState
from amp_ros.crf import refine
from amp_ros.errors import EmptyMaskError, InputError
from amp_ros.flow import check_flow, compute_dis_flow, resize_flow
from amp_ros.inference import Prediction, check_frame, predict, shrink_frame, upsample
from amp_ros.proxies import nmap
from amp_ros.pseudo_labels import pseudo_labels
from amp_ros.settings import PipelineConfig

BACKGROUND, OBJECT = "background", "object"
MAX_CLASS_ID = 254  # label images are mono8 and 255 means "ignore"


@dataclass
class StepResult:
    """What one frame produced, at the frame's size H×W.

    mask: uint8 0/255 moving object; probability: float32 object probability;
    labels: uint8 class ids (0 = background) or None when no class has been taught.
    """

    mask: np.ndarray
    probability: np.ndarray
    labels: np.ndarray | None
    adapted: bool
    flow_source: str  # "given", "dis" or "none" (first frame without flow)
    timings: dict[str, float]


class Pipeline:
    """Online AMP segmentation of one video stream."""

    def __init__(self, checkpoint: Checkpoint, config: PipelineConfig | None = None):
        self.checkpoint = checkpoint
        self.model = checkpoint.model.eval()
        self.config = config or PipelineConfig()
        classifier = self.model.classifier
        for name in (BACKGROUND, OBJECT):
            classifier.index(name)  # the checkpoint must have both base classes
        self.base_classes = tuple(classifier.class_names)
        self._initial = classifier.export_state()
        self._previous_small: np.ndarray | None = None
        self._last: tuple[Prediction, tuple[int, int]] | None = None
        self.adaptation_updates = 0

    @classmethod
    def from_checkpoint(
        cls, path: str | Path, *, device: str = "cpu", config: PipelineConfig | None = None
    ) -> Pipeline:
        """Load a checkpoint folder and wrap it in a pipeline."""
        return cls(load_checkpoint(path, device=device), config)

    @property
    def classifier(self):
        """The imprintable heads: this stream's current proxies."""
        return self.model.classifier

    @property
    def taught_classes(self) -> dict[str, int]:
        """Taught class names → ids (the checkpoint's base classes excluded)."""
        c = self.classifier
        return {n: i for n, i in zip(c.class_names, c.class_ids) if n not in self.base_classes}

    def configure(self, **changes: object) -> None:
        """Change run-time settings, e.g. ``configure(alpha=0.0, crf=False)``."""
        self.config = replace(self.config, **changes)

    def step(self, frame: np.ndarray, flow: np.ndarray | None = None) -> StepResult:
        """Segment one frame (H×W×3 uint8 RGB) given its flow from the previous frame.

        flow: H×W×2 float32 pixel displacements, or None to compute DIS flow from the previous
        frame (zero flow on the first frame).
        """
        timings: dict[str, float] = {}
        start = time.perf_counter()
        frame = check_frame(frame)
        height, width = frame.shape[:2]
        if flow is not None:
            flow = check_flow(flow, height, width)
        small = shrink_frame(frame, self.checkpoint.input.max_side)
        small_h, small_w = small.shape[:2]
        if flow is not None:
            small_flow, source = resize_flow(flow, small_h, small_w), "given"
        elif self._previous_small is not None and self._previous_small.shape == small.shape:
            small_flow = compute_dis_flow(self._previous_small, small, self.config.dis_preset)
            source = "dis"
        else:
            small_flow, source = np.zeros((small_h, small_w, 2), np.float32), "none"
        self._previous_small = small
        timings["flow"] = time.perf_counter() - start

        tick = time.perf_counter()
        prediction = predict(
            self.model, small, small_flow, self.checkpoint.input, self.config.head_levels
        )
        self._last = (prediction, (height, width))
        timings["network"] = time.perf_counter() - tick

        tick = time.perf_counter()
        classifier = self.classifier
        rows = [classifier.index(BACKGROUND), classifier.index(OBJECT)]
        two_class = torch.softmax(prediction.logits[rows], dim=0).numpy()
        if self.config.crf:
            scale = small_h / height
            two_class = refine(two_class, prediction.frame, self.config.crf_config, scale)
        object_small = two_class[1]
        timings["crf"] = time.perf_counter() - tick

        tick = time.perf_counter()
        adapted = self.config.adapt and self.config.alpha > 0 and self._self_adapt(
            prediction, object_small
        )
        timings["adapt"] = time.perf_counter() - tick

        tick = time.perf_counter()
        probability = cv2.resize(object_small, (width, height), interpolation=cv2.INTER_LINEAR)
        mask = np.where(probability > self.config.mask_threshold, 255, 0).astype(np.uint8)
        labels = self._labels(prediction, (height, width)) if self.taught_classes else None
        timings["output"] = time.perf_counter() - tick
        timings["total"] = time.perf_counter() - start
        return StepResult(mask, probability.astype(np.float32), labels, adapted, source, timings)

    def teach(self, label: str, mask: np.ndarray, frame: np.ndarray | None = None) -> int:
        """Imprint class ``label`` from one labelled frame (or adapt it if it exists).

        mask: H×W, non-zero = the object, same size as ``frame``; frame None means the last
        frame ``step`` processed. A given frame is seen with zero flow. Returns the class id.
        """
        label = label.strip()
        if not label:
            raise InputError("label must be a non-empty name")
        if frame is None:
            if self._last is None:
                raise InputError("no frame given and no frame processed yet")
            prediction, size = self._last
        else:
            frame = check_frame(frame)
            size = frame.shape[:2]
            small = shrink_frame(frame, self.checkpoint.input.max_side)
            zero = np.zeros((*small.shape[:2], 2), np.float32)
            prediction = predict(self.model, small, zero, self.checkpoint.input)
        mask = np.asarray(mask)
        if mask.shape != tuple(size):
            raise InputError(f"mask has shape {mask.shape}, the frame is {tuple(size)}")
        if not mask.any():
            raise EmptyMaskError("the mask selects no pixel: nothing to teach")
        selected = torch.from_numpy(mask != 0)
        proxies = [nmap(feature, selected) for feature in prediction.features]
        classifier = self.classifier
        if label in classifier.class_names:
            classifier.adapt(label, proxies, self.config.teach_alpha)
            return classifier.class_id(label)
        if max(classifier.class_ids) + 1 > MAX_CLASS_ID:
            raise InputError(f"class ids are full (ids go up to {MAX_CLASS_ID}); forget a class first")
        return classifier.imprint(label, proxies)

    def forget(self, label: str) -> None:
        """Remove a taught class; the base classes cannot be removed."""
        label = label.strip()
        if label in self.base_classes:
            raise InputError(f"{label!r} is a base class of the checkpoint and cannot be forgotten")
        self.classifier.remove(label)

    def reset(self) -> None:
        """Start a new video: base proxies back to the checkpoint's, previous frame dropped.

        Taught classes are kept (``forget`` removes them).
        """
        taught = self.taught_state()
        self.classifier.restore_state(self._initial)
        self.restore_taught(taught)
        self._previous_small = None
        self._last = None
        self.adaptation_updates = 0

    def taught_state(self) -> ClassifierState:
        """The taught classes only (ids, names, weights per level): what persists."""
        state = self.classifier.export_state()
        keep = [i for i, n in enumerate(state.names) if n not in self.base_classes]
        return ClassifierState(
            ids=tuple(state.ids[i] for i in keep),
            names=tuple(state.names[i] for i in keep),
            weights=tuple(w[keep].clone() for w in state.weights),
            log_scale=state.log_scale,
        )

    def restore_taught(self, taught: ClassifierState) -> None:
        """Re-add taught classes (e.g. loaded from disk) on top of the current base classes."""
        channels = self.classifier.channels
        if len(taught.weights) != len(channels) or any(
            w.dim() != 2 or w.shape[1] != c for w, c in zip(taught.weights, channels)
        ):
            raise InputError("taught classes were made with a different network; not restored")
        if len(taught.ids) != len(taught.names) or any(
            w.shape[0] != len(taught.names) or not torch.isfinite(w).all() for w in taught.weights
        ):
            raise InputError("taught classes are inconsistent (ids, names, weights); not restored")
        # Rebuild the whole state at once: exact weights (no re-normalisation) and no half-restored
        # classifier when a name or id collides.
        current = self.classifier.export_state()
        base = [i for i, n in enumerate(current.names) if n in self.base_classes]
        names = [current.names[i] for i in base] + list(taught.names)
        ids = [current.ids[i] for i in base] + [int(i) for i in taught.ids]
        if len(set(names)) != len(names) or len(set(ids)) != len(ids):
            raise InputError(f"taught classes collide with the base classes: {names}, ids {ids}")
        weights = tuple(
            torch.cat([w[base], t.to(w.device, w.dtype)]) for w, t in zip(current.weights, taught.weights)
        )
        self.classifier.restore_state(ClassifierState(tuple(ids), tuple(names), weights, current.log_scale))

    def _self_adapt(self, prediction: Prediction, object_probability: np.ndarray) -> bool:
        labels = pseudo_labels(object_probability, self.config.pseudo)
        if labels is None or not (labels == 0).any():
            return False
        targets = {OBJECT: torch.from_numpy(labels == 1), BACKGROUND: torch.from_numpy(labels == 0)}
        for name, selected in targets.items():
            proxies = [nmap(feature, selected) for feature in prediction.features]
            self.classifier.adapt(name, proxies, self.config.alpha)
        self.adaptation_updates += 1
        return True

    def _labels(self, prediction: Prediction, size: tuple[int, int]) -> np.ndarray:
        ids = torch.tensor(self.classifier.class_ids, dtype=torch.uint8)
        winner = upsample(prediction.logits, size).argmax(0)
        return ids[winner].numpy()
