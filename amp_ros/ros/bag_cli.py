"""``amp-bag``: :mod:`amp_ros.bag.cli` with the ``replay`` command (rclpy) added.

``amp-bag replay BAG [BAG ...] [--rate R | --lockstep] [--results DIR] [--record BAG]`` publishes
bags to the segmentation node and collects its masks (:func:`amp_ros.ros.replay.replay_bag`).
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from amp_ros.bag import cli
from amp_ros.bag.cli import positive
from amp_ros.bag.read import bag_path, sequence_name
from amp_ros.errors import AmpError
from amp_ros.ros.dds_env import apply_dds_variables


def add_replay_command(sub: argparse._SubParsersAction) -> None:
    """The ``replay`` subcommand."""
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
        type=positive(float),
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
    cmd.add_argument(
        "--transport",
        choices=("raw", "compressed"),
        default="raw",
        help="send frames as rgb8 Images on --image-topic (default) or as lossless PNG "
        "CompressedImages on <image-topic>/compressed (a node with image_transport:=compressed)",
    )
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
        type=positive(float),
        default=30.0,
        metavar="S",
        help="lockstep: seconds to wait for each mask (default 30)",
    )
    cmd.add_argument(
        "--connect-timeout",
        type=positive(float),
        default=30.0,
        metavar="S",
        help="seconds to wait for the node to subscribe (default 30)",
    )
    cmd.add_argument("--quiet", action="store_true", help="no progress bar")
    cmd.set_defaults(handler=_replay)


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
    apply_dds_variables(localhost=False)  # the SHM profile, before rclpy.init (replay_bag)
    from amp_ros.ros.replay import replay_bag  # rclpy: loaded only when replaying

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
            transport=args.transport,
        )
        print(stats.summary())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``amp-bag``; returns the exit status."""
    return cli.main(argv, extensions=[add_replay_command])


if __name__ == "__main__":
    sys.exit(main())
