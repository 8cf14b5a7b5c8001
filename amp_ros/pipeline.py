"""The per-video segmentation pipeline: the one object the node, the evaluation and the demo use.

A stateless network and the per-video state it reads, as in Cutie: the base proxies (trained
background/object, self-adapted every frame), the taught classes (each an object proxy against
its own background, also self-adapted), the previous frame for flow, the previous frame's object
probability (carried along the flow into the next frame's, ``propagation``) and the last few
frames' features for teaching. ``step(frame, flow=None)`` segments one frame; ``teach``, ``forget`` and
``reset`` change the classes.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import torch

from amp_ros.checkpoint import Checkpoint, load_checkpoint
from amp_ros.crf import FrameCrf
from amp_ros.errors import EmptyMaskError, InputError, UnknownClassError
from amp_ros.flow import check_flow, compute_dis_flow, resize_flow
from amp_ros.inference import FrameFeatures, check_frame, class_logits, predict, shrink_frame, upsample
from amp_ros.onnx_parts import with_onnx_parts
from amp_ros.propagation import carry_mask, carry_probability
from amp_ros.proxies import nmap
from amp_ros.proxy_set import ProxySet
from amp_ros.pseudo_labels import pseudo_labels
from amp_ros.settings import RECENT_FRAMES, PipelineConfig
from amp_ros.taught_classes import TaughtClasses, background_cells

BACKGROUND, OBJECT = "background", "object"
MAX_CLASS_ID = 254  # label images are mono8 and 255 means "ignore"
MAX_LABEL_LENGTH = 64
FOLLOW_UP_ALPHA = 0.5  # a teach's follow-up on the next moving frame weighs as much as the teach


@dataclass
class StepResult:
    """What one frame produced, at the frame's size H×W.

    mask: uint8 0/255 moving object; probability: float32 object probability;
    labels: uint8 taught-class ids (0 = no taught class) or None when no class has been taught.
    """

    mask: np.ndarray
    probability: np.ndarray
    labels: np.ndarray | None
    adapted: bool
    flow_source: str  # "given", "dis" or "none" (first frame without flow)
    timings: dict[str, float]
    # the h×w×3 frame at the processing size and the h×w×2 flow the network was given (None
    # without flow): what to give ``teach`` later, so that a class is taught on what it saw
    small_frame: np.ndarray
    small_flow: np.ndarray | None
    taught_changed: bool = False  # a teach was completed on this frame (persist the classes)


class Shot(NamedTuple):
    """A frame as the network saw it, for teaching: its features, its original size (H, W),
    and whether it was seen with flow (the motion stream's input) or without."""

    features: FrameFeatures
    size: tuple[int, int]
    moving: bool


@dataclass(frozen=True)
class TeachResult:
    """What ``teach`` did: the class id, and whether it imprinted a new class or adapted one."""

    label: str
    class_id: int
    imprinted: bool
    shots: int


class Pipeline:
    """Online AMP segmentation of one video stream."""

    def __init__(self, checkpoint: Checkpoint, config: PipelineConfig | None = None):
        self.checkpoint = checkpoint
        # channels-last: the convolutions' faster layout on CPUs (oneDNN) and GPUs alike
        self._torch_network = checkpoint.network.eval().to(memory_format=torch.channels_last)
        self._device = str(next(self._torch_network.parameters()).device)  # where the torch CRF runs
        # on the CPU, the parts the checkpoint ships as ONNX graphs run on onnxruntime
        self._onnx_network = (
            with_onnx_parts(self._torch_network, checkpoint.onnx_parts)
            if checkpoint.onnx_parts and self._device == "cpu" else None
        )
        # Features come back to the CPU (inference.predict), so the proxies live there too.
        self.scale = checkpoint.scale.cpu()
        self.config = config or PipelineConfig()
        initial = checkpoint.proxies.to("cpu")
        for name in (BACKGROUND, OBJECT):
            initial.index(name)  # the checkpoint must have both base classes
        self._initial = initial
        self.base: ProxySet = initial
        self._taught = TaughtClasses.empty(initial.channels)  # as taught; reset returns here
        self.taught: TaughtClasses = self._taught  # self-adapted while the video runs
        self._previous_small: np.ndarray | None = None
        self._previous_object: np.ndarray | None = None  # h×w, the last frame's, after the CRF
        self._last_seen: dict[str, np.ndarray] = {}  # taught class → its h×w mask of the last frame
        self._recent: deque[Shot] = deque(maxlen=RECENT_FRAMES)
        # taught class → its mask (at the processing size) on a frame seen without flow: the
        # next frame with flow is taught from that mask carried along the flow (_follow_up)
        self._follow_ups: dict[str, np.ndarray] = {}
        self.adaptation_updates = 0
        self._crf_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="amp_ros-crf")
        self._cores = usable_cores()

    @classmethod
    def from_checkpoint(
        cls, path: str | Path, *, device: str = "cpu", config: PipelineConfig | None = None
    ) -> Pipeline:
        """Load a checkpoint folder and wrap it in a pipeline."""
        return cls(load_checkpoint(path, device=device), config)

    @property
    def network(self) -> torch.nn.Module:
        """The network this frame runs: with the checkpoint's ONNX parts where it has them and
        ``onnx`` is on, the checkpoint's torch network otherwise."""
        if self._onnx_network is not None and self.config.onnx:
            return self._onnx_network
        return self._torch_network

    @property
    def runtime(self) -> str:
        """What runs the network's heavy parts now: "onnxruntime" or "torch"."""
        return "onnxruntime" if self.network is self._onnx_network else "torch"

    @property
    def base_classes(self) -> tuple[str, ...]:
        """The checkpoint's class names (background, object)."""
        return self._initial.names

    @property
    def class_names(self) -> tuple[str, ...]:
        """Every class: the base ones, then the taught ones."""
        return self.base.names + self.taught.names

    @property
    def taught_classes(self) -> dict[str, int]:
        """Taught class names → ids."""
        return dict(zip(self.taught.names, self.taught.ids))

    def configure(self, **changes: object) -> None:
        """Change run-time settings, e.g. ``configure(alpha=0.0, crf=False)``."""
        self.config = replace(self.config, **changes)

    # --- segmentation --------------------------------------------------------------------

    def step(self, frame: np.ndarray, flow: np.ndarray | None = None, *, labels: bool = True) -> StepResult:
        """Segment one frame (H×W×3 uint8 RGB) given its flow from the previous frame.

        flow: H×W×2 float32 pixel displacements, or None to compute DIS flow from the previous
        frame (zero flow on the first frame). labels False: skip the taught classes (their
        labels, CRF and adaptation; ``labels`` of the result is None), as when nobody listens.
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
        with_taught = labels and len(self.taught) > 0
        # the CRF's kernels depend on the frame alone: built in the worker while the network runs
        # (where torch leaves the worker a core: spare_core)
        needs_crf = self.config.crf or (with_taught and self.config.taught_crf)
        spare = spare_core(self._device, torch.get_num_threads(), self._cores)
        crf = FrameCrf(small, self.config.crf_config, small_h / height, self._device,
                       self._crf_worker if needs_crf and spare else None)
        features = predict(self.network, small, small_flow, self.checkpoint.input)
        moving = source != "none"
        self._recent.append(Shot(features, (height, width), moving))
        timings["network"] = time.perf_counter() - tick
        followed_up = moving and self._follow_up(features, small_flow)

        tick = time.perf_counter()
        logits = class_logits(features, self.base, self.scale, self.config.head_levels)
        rows = [self.base.index(BACKGROUND), self.base.index(OBJECT)]
        two_class = torch.softmax(logits[rows], dim=0).numpy()
        two_class = self._with_previous(two_class, small_flow, moving)
        if self.config.crf:
            two_class = crf.refine(two_class)
        object_small = two_class[1]
        self._previous_object = object_small
        timings["crf"] = time.perf_counter() - tick

        tick = time.perf_counter()
        adapted = self._adapting(self.config.alpha) and self._self_adapt(features, object_small)
        timings["adapt"] = time.perf_counter() - tick

        tick = time.perf_counter()
        taught = self._taught_labels(features, (height, width), crf) if with_taught else None
        timings["taught"] = time.perf_counter() - tick

        tick = time.perf_counter()
        probability = cv2.resize(object_small, (width, height), interpolation=cv2.INTER_LINEAR)
        mask = np.where(probability > self.config.mask_threshold, 255, 0).astype(np.uint8)
        timings["output"] = time.perf_counter() - tick
        timings["total"] = time.perf_counter() - start
        return StepResult(mask, probability.astype(np.float32), taught, adapted, source, timings,
                          small, small_flow if moving else None, taught_changed=followed_up)

    # --- classes -------------------------------------------------------------------------

    def teach(
        self,
        label: str,
        masks: np.ndarray | Sequence[np.ndarray],
        frames: np.ndarray | Sequence[np.ndarray] | None = None,
        flows: np.ndarray | Sequence[np.ndarray | None] | None = None,
    ) -> TeachResult:
        """Teach class ``label`` from k labelled frames (k = 1: one H×W mask, non-zero = object).

        frames None: the masks label the last k frames ``step`` processed (oldest first), seen
        with the flow they had. Otherwise one H×W×3 frame per mask, seen with its H×W×2 flow from
        ``flows`` (a kept frame with its ``StepResult.small_flow``) or, where that is None, with
        zero flow (as a stream's first frame). The object proxy is NMAP of the masked pixels over
        the k shots (AMP eq. 1); the class's own background proxies are NMAPs of the other
        pixels, one per cell of a grid over the frame (:mod:`amp_ros.taught_classes`). A new
        label is imprinted; an existing one is adapted towards the new proxies with
        ``teach_alpha``.
        """
        label = self._check_label(label)
        masks = [np.asarray(masks)] if isinstance(masks, np.ndarray) else [np.asarray(m) for m in masks]
        if not masks:
            raise InputError("teach needs at least one mask")
        shots = self._shots(masks, frames, flows)
        selected = []
        for index, (mask, (_, size, _)) in enumerate(zip(masks, shots)):
            if mask.shape != tuple(size):
                raise InputError(f"mask {index} has shape {mask.shape}, its frame is {tuple(size)}")
            object_pixels = mask != 0
            if not object_pixels.any():
                raise EmptyMaskError(f"mask {index} selects no pixel: nothing to teach")
            if object_pixels.all():
                raise EmptyMaskError(f"mask {index} selects every pixel: no background to contrast")
            selected.append(torch.from_numpy(object_pixels))
        if len({m.shape for m in selected}) != 1:
            raise InputError("the masks of a k-shot teach must all have the same size")
        shot_features = [shot.features for shot in shots]
        moving = any(shot.moving for shot in shots)
        objects = _shot_proxies(shot_features, torch.stack(selected))
        grid = self.taught.grid(label) if label in self.taught else self.config.taught_background_grid
        backgrounds = _cell_proxies(shot_features, ~torch.stack(selected), grid)
        if label in self.taught:
            alpha = self.config.teach_alpha
            self._change_taught(label, lambda taught: taught.adapt(label, objects, backgrounds, alpha))
            result = TeachResult(label, self.taught.objects.class_id(label), False, len(masks))
        else:
            class_id = self._free_class_id()
            self._change_taught(label, lambda taught: taught.imprint(label, class_id, objects, backgrounds))
            result = TeachResult(label, class_id, True, len(masks))
        if not moving and (frames is None or self._is_newest(frames)):
            # Seen without motion (a stream's first frame, or a frame given with the mask), the
            # object's features lack what the motion stream adds on every later frame; when
            # the taught frame is the newest one processed, the next frame's flow starts from it.
            last = shots[-1].features
            self._follow_ups[label] = cv2.resize(
                selected[-1].numpy().astype(np.float32), (last.size[1], last.size[0]),
                interpolation=cv2.INTER_AREA) >= 0.5
        return result

    def forget(self, label: str) -> None:
        """Remove a taught class; the base classes cannot be removed."""
        label = label.strip()
        if label in self.base_classes:
            raise InputError(f"{label!r} is a base class of the checkpoint and cannot be forgotten")
        if label not in self.taught:
            raise UnknownClassError(f"unknown class {label!r}; taught classes: {list(self.taught.names)}")
        self._change_taught(label, lambda taught: taught.remove(label))
        self._follow_ups.pop(label, None)

    def warm_up(self, height: int = 480, width: int = 854) -> float:
        """Run two textured frames through every stage, then :meth:`reset`; returns the seconds.

        torch initialises lazily on its first forward pass (seconds on a CPU): done before the
        first camera frame, that frame is served like any other. Call it before a video starts.
        """
        start = time.perf_counter()
        rng = np.random.default_rng(0)
        texture = cv2.resize(rng.integers(0, 256, (height // 16 + 1, width // 16 + 1, 3), dtype=np.uint8),
                             (width, height), interpolation=cv2.INTER_LINEAR)
        self.step(texture)
        self.step(np.roll(texture, 4, axis=1))  # a second frame: DIS flow and adaptation run too
        self.reset()
        return time.perf_counter() - start

    def reset(self) -> None:
        """Start a new video: base and taught proxies back to where they started, frames dropped.

        Taught classes are kept as they were taught (``forget`` removes them).
        """
        self.base = self._initial
        self.taught = self._taught
        self._last_seen.clear()
        self._previous_small = None
        self._previous_object = None
        self._recent.clear()
        self._follow_ups.clear()
        self.adaptation_updates = 0

    def taught_state(self) -> TaughtClasses:
        """The taught classes as taught (not their per-video adaptation): what persists."""
        return self._taught

    def restore_taught(self, taught: TaughtClasses) -> None:
        """Replace the taught classes (e.g. loaded from disk); InputError if they do not fit."""
        if taught.channels != self._initial.channels:
            raise InputError(
                f"taught classes have feature channels {taught.channels}, this network "
                f"{self._initial.channels}: they were made with a different network; not restored"
            )
        clash = set(taught.names) & set(self.base_classes)
        if clash:
            raise InputError(f"taught classes collide with the base classes: {sorted(clash)}")
        bad = [i for i in taught.ids if not 0 < i <= MAX_CLASS_ID or i in self._initial.ids]
        if bad:
            raise InputError(f"taught class ids {bad} are out of range or taken by a base class")
        self._taught = self.taught = taught
        self._last_seen.clear()

    # --- internals -----------------------------------------------------------------------

    def _change_taught(self, label: str, change: Callable[[TaughtClasses], TaughtClasses]) -> None:
        """Apply one change of class ``label`` (teach, forget) to the classes as taught and to
        their per-video adaptation alike; the class is looked for in the whole next frame."""
        self._taught, self.taught = change(self._taught), change(self.taught)
        self._last_seen.pop(label, None)

    def _follow_up(self, features: FrameFeatures, flow: np.ndarray) -> bool:
        """Teach each class taught on a frame without flow once more, on this frame with flow.
        Returns whether a class changed."""
        follow_ups, self._follow_ups = self._follow_ups, {}
        changed = [self._follow_up_class(label, mask, features, flow) for label, mask in follow_ups.items()]
        return any(changed)

    def _follow_up_class(
        self, label: str, mask: np.ndarray, features: FrameFeatures, flow: np.ndarray
    ) -> bool:
        """Class ``label``'s mask carried along the flow, its proxies adapted halfway towards this
        view (the mean of the two views: a 2-shot NMAP). False when there is nothing to learn."""
        if label not in self._taught or mask.shape != flow.shape[:2]:
            return False
        carried = carry_mask(mask, flow)
        if not carried.any() or carried.all():
            return False
        selected = torch.from_numpy(carried)[None]
        try:
            objects = _shot_proxies([features], selected)
        except InputError:  # the carried pixels have no features to average
            return False
        backgrounds = _cell_proxies([features], ~selected, self._taught.grid(label))
        self._change_taught(label, lambda taught: taught.adapt(label, objects, backgrounds, FOLLOW_UP_ALPHA))
        self._last_seen[label] = carried  # where it is now: looked for near there next
        return True

    def _is_newest(self, frames: np.ndarray | Sequence[np.ndarray]) -> bool:
        """Whether the last of ``frames`` is the newest frame ``step`` processed."""
        last = np.asarray(frames if isinstance(frames, np.ndarray) else frames[-1])
        if self._previous_small is None or last.ndim != 3 or last.dtype != np.uint8:
            return False
        small = shrink_frame(last, self.checkpoint.input.max_side)
        return small.shape == self._previous_small.shape and np.array_equal(small, self._previous_small)

    def _with_previous(self, two_class: np.ndarray, flow: np.ndarray, moving: bool) -> np.ndarray:
        """2×h×w background/object probabilities mixed with the previous frame's (as refined),
        carried along the flow, by ``propagation``; as they are without a previous frame or flow."""
        beta, previous = self.config.propagation, self._previous_object
        if beta == 0 or not moving or previous is None or previous.shape != two_class.shape[1:]:
            return two_class
        carried = carry_probability(previous, flow)
        return (1 - beta) * two_class + beta * np.stack([1 - carried, carried])

    def _pseudo_labels(self, probability: np.ndarray) -> np.ndarray | None:
        """Self-adaptation targets from an h×w probability, or None when they have no confident
        object or no background (then the frame adapts nothing)."""
        labels = pseudo_labels(probability, self.config.pseudo)
        return labels if labels is not None and (labels == 0).any() else None

    def _adapting(self, alpha: float) -> bool:
        return self.config.adapt and alpha > 0

    def _self_adapt(self, features: FrameFeatures, object_probability: np.ndarray) -> bool:
        labels = self._pseudo_labels(object_probability)
        if labels is None:
            return False
        targets = {OBJECT: labels == 1, BACKGROUND: labels == 0}
        try:  # both halves first: an update is all or nothing
            proxies = {name: [nmap(f, torch.from_numpy(selected)) for f in features.features]
                       for name, selected in targets.items()}
        except InputError:  # the selected features are all zero: nothing to learn this frame
            return False
        for name, update in proxies.items():
            self.base = self.base.adapt(name, update, self.config.alpha)
        self.adaptation_updates += 1
        return True

    def _taught_labels(self, features: FrameFeatures, size: tuple[int, int], crf: FrameCrf) -> np.ndarray:
        """Per pixel the taught class whose object beats its own background most (0: none).

        A class's probability is the softmax of (its best background cell, its object) logits,
        kept to within ``taught_search_radius`` of where the class was in the previous frame
        (when it was seen there) and refined by the frame's CRF (``crf``, its kernels shared with
        the moving object's) when ``taught_crf``; a pixel takes the class of highest probability
        among those above ``mask_threshold``. Each class then self-adapts from its own confident
        pixels with ``taught_alpha``.
        """
        levels = self.config.head_levels
        objects = class_logits(features, self.taught.objects, self.scale, levels)
        probabilities = []
        for name, object_logits in zip(self.taught.names, objects):
            background = class_logits(features, self.taught.background(name), self.scale, levels).amax(0)
            pair = torch.softmax(torch.stack([background, object_logits]), dim=0).numpy()
            pair = self._near_last_seen(name, pair)
            if self.config.taught_crf:
                pair = crf.refine(pair)
            probabilities.append(pair[1])
            self._last_seen[name] = pair[1] > self.config.mask_threshold
        if self._adapting(self.config.taught_alpha):
            for name, probability in zip(self.taught.names, probabilities):
                self._adapt_taught(name, features, probability)
        full = upsample(torch.from_numpy(np.stack(probabilities)), size)
        best, winner = full.max(dim=0)
        ids = torch.tensor(self.taught.ids, dtype=torch.uint8)
        labels = torch.where(best > self.config.mask_threshold, ids[winner], torch.zeros_like(ids[winner]))
        return labels.numpy()

    def _near_last_seen(self, name: str, pair: np.ndarray) -> np.ndarray:
        """(background, object) probabilities with the object outside the search window moved to
        the background: the window is the class's last mask dilated by the search radius."""
        last = self._last_seen.get(name)
        radius = int(round(self.config.taught_search_radius * float(np.hypot(*pair.shape[1:]))))
        if last is None or last.shape != pair.shape[1:] or not last.any() or radius <= 0:
            return pair
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        window = cv2.dilate(last.astype(np.uint8), kernel).astype(bool)
        inside = pair[1] * window
        return np.stack([1.0 - inside, inside]).astype(pair.dtype)

    def _adapt_taught(self, name: str, features: FrameFeatures, probability: np.ndarray) -> None:
        labels = self._pseudo_labels(probability)
        if labels is None:
            return
        try:
            objects = [nmap(f, torch.from_numpy(labels == 1)) for f in features.features]
        except InputError:  # the confident object pixels' features are all zero: nothing to learn
            objects = None
        backgrounds = _cell_proxies([features], torch.from_numpy(labels == 0)[None], self.taught.grid(name))
        self.taught = self.taught.adapt(name, objects, backgrounds, self.config.taught_alpha)

    def _check_label(self, label: str) -> str:
        label = label.strip()
        if not label:
            raise InputError("label must be a non-empty name")
        if len(label) > MAX_LABEL_LENGTH:
            raise InputError(f"label has {len(label)} characters; at most {MAX_LABEL_LENGTH}")
        if label in self.base_classes:
            raise InputError(
                f"{label!r} is a base class of the checkpoint (it adapts by itself); pick another label"
            )
        return label

    def _shots(
        self, masks: list[np.ndarray], frames: np.ndarray | Sequence[np.ndarray] | None,
        flows: np.ndarray | Sequence[np.ndarray | None] | None,
    ) -> list[Shot]:
        """The frame each mask labels, as the network sees it."""
        if frames is None:
            if not self._recent:
                raise InputError("no frame given and no frame processed yet")
            if len(self._recent) < len(masks):
                raise InputError(
                    f"{len(masks)} mask(s) given without frames, but only {len(self._recent)} "
                    f"frame(s) processed (at most {RECENT_FRAMES} are kept)"
                )
            return list(self._recent)[len(self._recent) - len(masks):]
        frames = [frames] if isinstance(frames, np.ndarray) else list(frames)
        if len(frames) != len(masks):
            raise InputError(f"{len(masks)} mask(s) but {len(frames)} frame(s)")
        if flows is None:
            flows = [None] * len(frames)
        flows = [flows] if isinstance(flows, np.ndarray) else list(flows)
        if len(flows) != len(frames):
            raise InputError(f"{len(frames)} frame(s) but {len(flows)} flow(s)")
        shots = []
        for frame, flow in zip(frames, flows):
            frame = check_frame(frame)
            small = shrink_frame(frame, self.checkpoint.input.max_side)
            if flow is None:
                small_flow = np.zeros((*small.shape[:2], 2), np.float32)
            else:
                small_flow = resize_flow(check_flow(flow, *frame.shape[:2]), *small.shape[:2])
            features = predict(self.network, small, small_flow, self.checkpoint.input)
            shots.append(Shot(features, frame.shape[:2], flow is not None))
        return shots

    def _free_class_id(self) -> int:
        """The smallest id above the base classes' that no taught class holds."""
        taken = set(self.taught.ids) | set(self._initial.ids)
        for candidate in range(max(self._initial.ids) + 1, MAX_CLASS_ID + 1):
            if candidate not in taken:
                return candidate
        raise InputError(f"class ids are full (ids go up to {MAX_CLASS_ID}); forget a class first")


def _cell_proxies(
    shots: list[FrameFeatures], background: torch.Tensor, grid: int
) -> dict[str, list[torch.Tensor]]:
    """Proxies of the background cells (:func:`background_cells`) over k shots (K×H×W masks);
    a cell whose features are all zero (no proxy can be made) is left out."""
    proxies = {}
    for cell, mask in background_cells(background, grid).items():
        try:
            proxies[cell] = _shot_proxies(shots, mask)
        except InputError:
            continue
    return proxies


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity on Linux, else every core)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else os.cpu_count() or 1


def spare_core(device: str, threads: int, cores: int) -> bool:
    """Whether the CRF's worker thread gets a CPU core of its own: on the CPU, when torch's
    ``threads`` leave one of the ``cores`` free (as the node's default does). On 2 cores with
    both computing the network, the worker slows the network by more than it saves."""
    return device == "cpu" and threads < cores


def _shot_proxies(shots: list[FrameFeatures], masks: torch.Tensor) -> list[torch.Tensor]:
    """One proxy per level from k shots and their K×H×W masks (AMP eq. 1, shots averaged)."""
    proxies = []
    for level in range(len(shots[0].features)):
        maps = [shot.features[level] for shot in shots]
        if len({m.shape for m in maps}) != 1:
            raise InputError("the frames of a k-shot teach must all have the same size")
        proxies.append(nmap(torch.stack(maps), masks))
    return proxies
