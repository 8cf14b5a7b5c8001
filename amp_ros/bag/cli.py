"""``amp-bag``: convert datasets and videos to rosbag2 bags, inspect them, replay them into ROS 2.

amp-bag from-davis --root DIR --sequence NAME|all --out BAG_OR_DIR [--fps 24] [--flow none|dis]
amp-bag from-fbms  --root DIR --sequence NAME|all --out BAG_OR_DIR [--fps 24] [--flow none|dis]
amp-bag from-video --input VIDEO_OR_FOLDER --out BAG [--fps F] [--max-frames N] [--resize WxH]
amp-bag info BAG
amp-bag replay BAG [BAG ...] [--rate R | --lockstep] [--results DIR] [--record BAG] [--timeout S]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from amp_ros.bag.read import FrameBag, bag_path, sequence_name
from amp_ros.bag.write import (
    DEFAULT_FPS,
    FLOW_METHODS,
    WrittenBag,
    davis_sequences,
    davis_to_bag,
    fbms_sequences,
    fbms_to_bag,
    video_to_bag,
)
from amp_ros.errors import AmpError


def _resize(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected WIDTHxHEIGHT like 854x480, got {text!r}"
        ) from None
    if width <= 0 or height <= 0:
        raise argparse.ArgumentTypeError(f"sizes must be positive, got {text!r}")
    return width, height


def _positive(kind: type) -> Callable[[str], float | int]:
    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
        return value

    return parse


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="amp-bag", description="Convert, inspect and replay amp_ros bags (rosbag2, MCAP)."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def conversion(name: str, help_text: str) -> argparse.ArgumentParser:
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        cmd.add_argument(
            "--fps",
            type=_positive(float),
            default=None,
            help=f"frame rate of the stamps (default {DEFAULT_FPS:g})",
        )
        cmd.add_argument(
            "--flow",
            choices=FLOW_METHODS,
            default="none",
            help="precompute optical flow into /camera/flow (default none)",
        )
        cmd.add_argument("--overwrite", action="store_true", help="replace existing bags")
        cmd.add_argument("--quiet", action="store_true", help="no progress bar")
        return cmd

    for name, dataset in (("from-davis", "DAVIS"), ("from-fbms", "FBMS-59")):
        cmd = conversion(name, f"convert {dataset} sequences (frames + ground truth) to bags")
        cmd.add_argument("--root", type=Path, required=True, help=f"{dataset} root directory")
        cmd.add_argument("--sequence", required=True, help="sequence name, or 'all'")
        cmd.add_argument(
            "--out",
            type=Path,
            required=True,
            help="bag path, or a directory for one bag per sequence",
        )

    cmd = conversion("from-video", "convert a video file or an image folder to a bag")
    cmd.add_argument("--input", type=Path, required=True, help="video file or image folder")
    cmd.add_argument("--out", type=Path, required=True, help="bag path")
    cmd.add_argument("--max-frames", type=_positive(int), default=None)
    cmd.add_argument("--resize", type=_resize, default=None, metavar="WxH")

    cmd = sub.add_parser("info", help="print a bag's topics, counts and metadata")
    cmd.add_argument("bag", type=Path)

    cmd = sub.add_parser(
        "replay",
        help="publish bags to the segmentation node and collect its masks",
        description="Publish bags to the segmentation node (rclpy) and collect its masks. "
        "FASTDDS_DEFAULT_PROFILES_FILE defaults to amp_ros's shared-memory profile.",
    )
    cmd.add_argument(
        "bags", type=Path, nargs="+", metavar="BAG", help="bags, or directories of bags"
    )
    mode = cmd.add_mutually_exclusive_group()
    mode.add_argument(
        "--rate",
        type=_positive(float),
        default=1.0,
        help="real-time factor for the bag stamps (default 1)",
    )
    mode.add_argument(
        "--lockstep",
        action="store_true",
        help="send each frame only after the previous frame's mask came back",
    )
    cmd.add_argument("--image-topic", default="/amp_vos/image")
    cmd.add_argument("--flow-topic", default="/amp_vos/flow")
    cmd.add_argument("--mask-topic", default="/amp_vos/mask")
    cmd.add_argument("--no-flow", action="store_true", help="do not send the bag's flow")
    cmd.add_argument(
        "--results",
        type=Path,
        default=None,
        metavar="DIR",
        help="write masks as DIR/<sequence>/<frame name>.png (DAVIS layout)",
    )
    cmd.add_argument(
        "--record",
        type=Path,
        default=None,
        metavar="BAG",
        help="record masks into a new bag (a directory of bags for several)",
    )
    cmd.add_argument(
        "--timeout",
        type=_positive(float),
        default=30.0,
        metavar="S",
        help="lockstep: seconds to wait for each mask (default 30)",
    )
    cmd.add_argument(
        "--connect-timeout",
        type=_positive(float),
        default=30.0,
        metavar="S",
        help="seconds to wait for the node to subscribe (default 30)",
    )
    cmd.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _bag_target(out: Path, sequence: str, many: bool) -> Path:
    """Where one sequence's bag goes: out/<seq> for several or an existing plain directory."""
    if many or (out.is_dir() and not (out / "metadata.yaml").is_file()):
        return out / sequence
    return out


def _report(written: WrittenBag) -> None:
    extra = ", flow" if written.flow else ""
    print(
        f"{written.path}: {written.frames} frames, {written.masks} masks{extra}, "
        f"{written.size_bytes / 1e6:.1f} MB, {written.seconds:.1f} s"
    )


def _convert_dataset(args: argparse.Namespace) -> int:
    if args.command == "from-davis":
        list_sequences, convert = davis_sequences, davis_to_bag
    else:
        list_sequences, convert = fbms_sequences, fbms_to_bag
    many = args.sequence == "all"
    sequences = list_sequences(args.root) if many else [args.sequence]
    if many:
        args.out.mkdir(parents=True, exist_ok=True)
    for sequence in sequences:
        written = convert(
            args.root,
            sequence,
            _bag_target(args.out, sequence, many),
            fps=args.fps or DEFAULT_FPS,
            flow=args.flow,
            progress=not args.quiet,
            overwrite=args.overwrite,
        )
        _report(written)
    return 0


def _convert_video(args: argparse.Namespace) -> int:
    written = video_to_bag(
        args.input,
        args.out,
        fps=args.fps,
        max_frames=args.max_frames,
        resize=args.resize,
        flow=args.flow,
        progress=not args.quiet,
        overwrite=args.overwrite,
    )
    _report(written)
    return 0


def _info(args: argparse.Namespace) -> int:
    with FrameBag(args.bag) as bag:
        print(f"{bag.path}: sequence {bag.sequence!r}, {len(bag)} frames")
        for topic, msgtype in sorted(bag.topics.items()):
            print(f"  {topic:24s} {msgtype:24s} {bag.count(topic)}")
        for key, value in sorted(bag.custom_data.items()):
            print(f"  {key} = {value}")
    return 0


def _expand_bags(paths: Sequence[Path]) -> list[Path]:
    bags = []
    for path in paths:
        if path.is_dir() and not (path / "metadata.yaml").is_file():
            inner = sorted(p for p in path.iterdir() if (p / "metadata.yaml").is_file())
            if not inner:
                raise AmpError(f"{str(path)!r} is neither a bag nor a directory of bags")
            bags += inner
        else:
            bags.append(path)
    return bags


def _replay(args: argparse.Namespace) -> int:
    from amp_ros.bag.replay import PROFILE_ENV
    from amp_ros.ros.node_process import fastdds_profile

    if PROFILE_ENV not in os.environ and (profile := fastdds_profile()) is not None:
        os.environ[PROFILE_ENV] = str(profile)  # before rclpy.init, which replay_bag does
    from amp_ros.bag.replay import replay_bag

    # SIGTERM (e.g. from a launch system) unwinds like Ctrl-C, so the DDS participant is closed.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    bags = _expand_bags(args.bags)
    for bag in bags:
        record = args.record
        if record is not None and len(bags) > 1:
            record.mkdir(parents=True, exist_ok=True)
            record = record / sequence_name(bag_path(bag))
        stats = replay_bag(
            bag,
            lockstep=args.lockstep,
            rate=args.rate,
            image_topic=args.image_topic,
            flow_topic=args.flow_topic,
            mask_topic=args.mask_topic,
            send_flow=not args.no_flow,
            results_dir=args.results,
            record=record,
            timeout=args.timeout,
            connect_timeout=args.connect_timeout,
            progress=not args.quiet,
        )
        print(stats.summary())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``amp-bag``; returns the exit status."""
    args = _parser().parse_args(argv)
    commands = {
        "from-davis": _convert_dataset,
        "from-fbms": _convert_dataset,
        "from-video": _convert_video,
        "info": _info,
        "replay": _replay,
    }
    try:
        return commands[args.command](args)
    except (AmpError, ValueError) as err:
        print(f"amp-bag: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
