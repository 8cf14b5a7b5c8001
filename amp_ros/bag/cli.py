"""``amp-bag``: convert datasets and videos to rosbag2 bags, inspect them, replay them into ROS 2.

amp-bag from-davis --root DIR --sequence NAME|all --out BAG_OR_DIR [--fps 24] [--flow none|dis]
amp-bag from-fbms  --root DIR --sequence NAME|all --out BAG_OR_DIR [--fps 24] [--flow none|dis]
amp-bag from-video --input VIDEO_OR_FOLDER --out BAG [--fps F] [--max-frames N] [--resize WxH]
amp-bag info BAG
amp-bag replay BAG [BAG ...] [--rate R | --lockstep] [--results DIR] [--record BAG] [--timeout S]

This module imports no ROS and has every command but ``replay``; the ``amp-bag`` command is
:mod:`amp_ros.ros.bag_cli`, this parser with ``replay`` (rclpy) added.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from amp_ros.bag.read import FrameBag
from amp_ros.bag.write import (
    DEFAULT_FPS,
    FLOW_METHODS,
    IMAGE_FORMATS,
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


def positive(kind: type) -> Callable[[str], float | int]:
    """An argparse type: ``kind`` (int or float) parsed and checked to be positive."""

    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
        return value

    return parse


Extension = Callable[[argparse._SubParsersAction], None]
"""Adds a subcommand (setting ``handler``) to the amp-bag parser; see amp_ros.ros.bag_cli."""


def build_parser(extensions: Sequence[Extension] = ()) -> argparse.ArgumentParser:
    """The amp-bag parser: the ROS-free commands and those that ``extensions`` add."""
    parser = argparse.ArgumentParser(
        prog="amp-bag", description="Convert, inspect and replay amp_ros bags (rosbag2, MCAP)."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def conversion(name: str, help_text: str) -> argparse.ArgumentParser:
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        cmd.add_argument(
            "--fps",
            type=positive(float),
            default=None,
            help=f"frame rate of the stamps (default {DEFAULT_FPS:g})",
        )
        cmd.add_argument(
            "--flow",
            choices=FLOW_METHODS,
            default="none",
            help="precompute optical flow into /camera/flow (default none)",
        )
        cmd.add_argument(
            "--image-format",
            choices=IMAGE_FORMATS,
            default="raw",
            help="frames as raw rgb8 Images on /camera/image_raw (default) or as CompressedImage "
            "(jpeg, png) on /camera/image_raw/compressed, as image_transport records them",
        )
        cmd.add_argument("--overwrite", action="store_true", help="replace existing bags")
        cmd.add_argument("--quiet", action="store_true", help="no progress bar")
        cmd.set_defaults(handler=_convert_video if name == "from-video" else _convert_dataset)
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
    cmd.add_argument("--max-frames", type=positive(int), default=None)
    cmd.add_argument("--resize", type=_resize, default=None, metavar="WxH")

    cmd = sub.add_parser("info", help="print a bag's topics, counts and metadata")
    cmd.add_argument("bag", type=Path)
    cmd.set_defaults(handler=_info)

    for extend in extensions:
        extend(sub)
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
            image_format=args.image_format,
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
        image_format=args.image_format,
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


def main(argv: Sequence[str] | None = None, *, extensions: Sequence[Extension] = ()) -> int:
    """Run ``amp-bag``; returns the exit status. ``extensions`` add commands (see
    :func:`build_parser`)."""
    args = build_parser(extensions).parse_args(argv)
    try:
        return args.handler(args)
    except (AmpError, ValueError) as err:
        print(f"amp-bag: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
