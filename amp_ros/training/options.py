"""The ``amp-train`` options: :class:`Options` and the argparse parser that fills it."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from amp_ros.flow import MOTION_INPUTS
from amp_ros.network import FUSIONS
from amp_ros.training.appearance import APPEARANCES, PRETRAINED
from amp_ros.training.data import DEFAULT_CACHE, dataset_name
from amp_ros.training.folds import FOLDS, VAL_SEQUENCES
from amp_ros.training.run_state import portable_path
from amp_ros.training.sampling import SamplingOptions
from amp_ros.training.threads import DEFAULT_THREADS
from amp_ros.training.validation import DEFAULT_STRIDE

CROP_MULTIPLE = 8  # crop sides are multiples of the network's output stride
MIN_CROP = 16  # smallest default crop side
MIN_CROP_SIDE = 8  # smallest crop side accepted by --crop
CROP_HEIGHT, CROP_WIDTH = 1 / 2, 7 / 8  # default crop as fractions of --max-side
PATH_OPTIONS = ("out", "cache", "init", "init_motion")  # recorded portably (see run_state.portable_path)


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
    init_motion: str | None = None
    episodes: int = 0
    episode_weight: float = 1.0
    support_zero_flow: float = 0.5
    threads: int = DEFAULT_THREADS
    motion: str = "flow"
    still_paste_prob: float = 0.0
    appearance_lr_scale: float = 1.0  # a trainable pretrained trunk's lr, relative to --lr
    fusion: str | None = None  # None: AMP's product for a new network, else the checkpoint's

    def sampling(self) -> SamplingOptions:
        """The options the sampler depends on."""
        return SamplingOptions(crop=self.crop, aux_weight=self.aux_weight,
                               paste_prob=self.paste_prob, camera_prob=self.camera_prob,
                               support_zero_flow=self.support_zero_flow,
                               still_paste_prob=self.still_paste_prob)

    def record(self) -> dict[str, Any]:
        """The options as JSON for a checkpoint: data folders by dataset name, other paths
        portable (no absolute path of this machine)."""
        record: dict[str, Any] = {}
        for key, value in self.__dict__.items():
            if key == "data":
                value = [dataset_name(d) for d in value]
            elif key in PATH_OPTIONS and value is not None:
                value = portable_path(value)
            record[key] = list(value) if isinstance(value, tuple) else value
        return record


def _int_tuple(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from err


def default_crop(max_side: int) -> tuple[int, int]:
    """Training crop (h, w): about 0.5 × 0.875 of ``max_side``, multiples of 8 (128×224 at 256)."""
    def side(fraction_of: int) -> int:
        return max(MIN_CROP, fraction_of // CROP_MULTIPLE * CROP_MULTIPLE)

    return side(int(max_side * CROP_HEIGHT)), side(int(max_side * CROP_WIDTH))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="amp-train", description="Train the AMP two-stream network (background/object heads)."
    )
    parser.add_argument("--data", nargs="+", required=True,
                        help="DAVIS-layout folders; the first is the main set, the others auxiliary")
    parser.add_argument("--sequences", nargs="+", default=None,
                        help="train only on these sequence names (default: all but the val ones)")
    held_out = parser.add_mutually_exclusive_group()
    held_out.add_argument("--val-sequences", nargs="+", default=None,
                          help=f"held-out validation sequences (default: fold A, {list(VAL_SEQUENCES)})")
    held_out.add_argument("--fold", choices=sorted(FOLDS),
                          help="hold out one cross-validation fold's six sequences (FOLDS in "
                               "amp_ros/training/folds.py; A is the default's)")
    parser.add_argument("--out", required=True, help="output folder (last/, best/, log.json)")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--steps-per-epoch", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS,
                        help="torch CPU threads; 0 = torch's default (the runs in this repository "
                             "used 2)")
    parser.add_argument("--width", type=float, default=0.25, help="channel width multiplier")
    parser.add_argument("--blocks", type=_int_tuple, default=(3, 4, 4),
                        help="residual units per group, e.g. 3,4,4")
    parser.add_argument("--appearance", choices=APPEARANCES, default="wrn",
                        help="appearance stream: the paper's WRN from scratch, an "
                             "ImageNet-initialised EfficientNet-Lite0, or the salient-object "
                             "U²-Netp / U²-Net (default: %(default)s)")
    parser.add_argument("--freeze-appearance", action=argparse.BooleanOptionalAction, default=None,
                        help="keep the pretrained appearance trunk fixed (weights and BatchNorm "
                             "statistics); its projections still train (default: on for "
                             "a pretrained stream)")
    parser.add_argument("--appearance-lr-scale", type=float, default=1.0,
                        help="with --no-freeze-appearance: the pretrained trunk's learning rate "
                             "as a fraction of --lr (its BatchNorm statistics stay as "
                             "pretrained) (default: %(default)s)")
    parser.add_argument("--fusion", choices=FUSIONS, default=None,
                        help="how the streams' features meet: AMP's product or a sum (default: "
                             "product for a new network; --init and --resume keep the "
                             "checkpoint's)")
    parser.add_argument("--max-side", type=int, default=256, help="training/inference size")
    parser.add_argument("--motion", choices=MOTION_INPUTS, default="flow",
                        help="the motion stream's input: the optical flow, or the flow minus the "
                             "camera's fitted motion (amp_ros.camera_motion) (default: %(default)s)")
    parser.add_argument("--crop", type=_int_tuple, default=None,
                        help="training crop H,W (default: about max_side/2 × 7/8·max_side)")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--warmup", type=int, default=100, help="linear warm-up steps")
    parser.add_argument("--aux-weight", type=float, default=0.15,
                        help="sampling probability of each auxiliary --data folder")
    parser.add_argument("--paste-prob", type=float, default=0.5,
                        help="probability of pasting a moving object into a sample")
    parser.add_argument("--still-paste-prob", type=float, default=0.0,
                        help="probability of pasting an object that stays still against the "
                             "background, labelled background (salient is not moving)")
    parser.add_argument("--camera-prob", type=float, default=0.3,
                        help="probability of adding a synthetic camera motion to the flow")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", default=str(DEFAULT_CACHE), help="cache folder (flow)")
    parser.add_argument("--val-stride", type=int, default=DEFAULT_STRIDE,
                        help="validate every n-th frame")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last")
    parser.add_argument("--init", default=None,
                        help="start from this checkpoint folder (fine-tuning) instead of scratch")
    parser.add_argument("--init-motion", default=None,
                        help="start the motion stream, trunk and heads from this checkpoint "
                             "folder (same widths), the appearance stream from its pretrained "
                             "weights")
    parser.add_argument("--episodes", type=int, default=0,
                        help="imprinting episodes per step (support/query frame pairs of one "
                             "sequence, amp_ros.training.episodes); 0 = supervised loss only "
                             "(the default: fine-tuning the shipped model with 4 lowered its "
                             "held-out J, docs/results.md)")
    parser.add_argument("--episode-weight", type=float, default=1.0,
                        help="weight of the episodic prototype loss next to the supervised one")
    parser.add_argument("--support-zero-flow", type=float, default=0.5,
                        help="probability that a support frame is seen with zero flow, as a "
                             "stream's first frame is when it is taught")
    return parser


def parse_options(argv: Sequence[str] | None) -> Options:
    """Parse and check the command line (argparse exits with status 2 on a bad one)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if len(args.blocks) != 3 or min(args.blocks) < 1:
        parser.error(f"--blocks needs three positive counts, got {args.blocks}")
    crop = tuple(args.crop) if args.crop else default_crop(args.max_side)
    if len(crop) != 2 or min(crop) < MIN_CROP_SIDE:
        parser.error(f"--crop needs H,W of at least {MIN_CROP_SIDE}, got {crop}")
    if args.epochs < 1 or args.steps_per_epoch < 1 or args.batch_size < 1:
        parser.error("--epochs, --steps-per-epoch and --batch-size must be positive")
    if args.threads < 0:
        parser.error("--threads must be 0 (torch's default) or positive")
    if not 0.0 <= args.aux_weight * (len(args.data) - 1) < 1.0:
        parser.error("--aux-weight × (number of auxiliary folders) must be below 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda asked for, but torch sees no CUDA device")
    if args.freeze_appearance and args.appearance not in PRETRAINED:
        parser.error("--freeze-appearance needs a pretrained appearance stream "
                     f"(--appearance {' / '.join(PRETRAINED)}); the WRN one starts from scratch")
    if not 0.0 < args.appearance_lr_scale <= 1.0:
        parser.error(f"--appearance-lr-scale must lie in (0, 1], got {args.appearance_lr_scale}")
    if args.init and args.init_motion:
        parser.error("--init and --init-motion exclude each other")
    return Options(
        data=tuple(str(Path(d)) for d in args.data),
        sequences=tuple(args.sequences) if args.sequences else None,
        val_sequences=(FOLDS[args.fold] if args.fold
                       else tuple(args.val_sequences or VAL_SEQUENCES)),
        out=args.out, epochs=args.epochs, steps_per_epoch=args.steps_per_epoch,
        batch_size=args.batch_size, device=args.device, width=args.width,
        blocks=tuple(args.blocks), appearance=args.appearance,
        freeze_appearance=args.freeze_appearance, max_side=args.max_side, crop=crop, lr=args.lr,
        weight_decay=args.weight_decay, warmup=args.warmup, aux_weight=args.aux_weight,
        paste_prob=args.paste_prob, camera_prob=args.camera_prob, seed=args.seed,
        cache=args.cache, resume=args.resume, val_stride=args.val_stride, init=args.init,
        init_motion=args.init_motion,
        episodes=args.episodes, episode_weight=args.episode_weight,
        support_zero_flow=args.support_zero_flow, threads=args.threads, motion=args.motion,
        still_paste_prob=args.still_paste_prob, appearance_lr_scale=args.appearance_lr_scale,
        fusion=args.fusion,
    )
