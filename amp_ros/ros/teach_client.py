"""``amp-teach``: teach the running node a class from a PNG frame and mask (calls /amp/teach).

Without ``--image`` the node teaches on a frame it processed: the one stamped ``--stamp`` (as the
mask was drawn on), or its newest. The reply says which frame's stamp was used.
"""

from __future__ import annotations

import argparse
import sys

import cv2
import rclpy

from amp_interfaces.srv import Teach
from amp_ros.ros.messages import image_msg


def _read(path: str, flags: int) -> object:
    image = cv2.imread(path, flags)
    if image is None:
        raise SystemExit(f"amp-teach: cannot read image {path}")
    return image


def parse_stamp(text: str) -> int:
    """A stamp given as seconds ("1700000000.033333333", as ROS prints them) → nanoseconds."""
    seconds, _, fraction = text.strip().partition(".")
    if not seconds.isdigit() or (fraction and not fraction.isdigit()) or len(fraction) > 9:
        raise argparse.ArgumentTypeError(f"not a stamp in seconds: {text!r} (e.g. 1700000000.033333333)")
    return int(seconds) * 1_000_000_000 + int(fraction.ljust(9, "0") or 0)


def build_request(image_path: str | None, mask_path: str, label: str, stamp_ns: int = 0) -> Teach.Request:
    """A Teach request from files; no image = the node's kept frame stamped ``stamp_ns`` (0: its
    newest)."""
    request = Teach.Request(label=label)
    if image_path:
        rgb = cv2.cvtColor(_read(image_path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        request.image = image_msg(rgb, "rgb8", stamp_ns=stamp_ns)
    mask = _read(mask_path, cv2.IMREAD_GRAYSCALE)
    request.mask = image_msg(mask, "mono8", stamp_ns=stamp_ns)
    return request


def main(argv: list[str] | None = None) -> int:
    """Send one teach request and print the node's answer; exit 0 on success."""
    parser = argparse.ArgumentParser(prog="amp-teach", description=__doc__)
    parser.add_argument("--image", help="frame (PNG/JPEG); omit to label a frame the node processed")
    parser.add_argument("--stamp", type=parse_stamp, default=0,
                        help="without --image: the stamp (s) of the processed frame the mask labels "
                             "(default: the node's newest)")
    parser.add_argument("--mask", required=True, help="mask PNG, non-zero = the object")
    parser.add_argument("--label", required=True, help="class name")
    parser.add_argument("--service", default="/amp/teach")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait")
    args, ros_args = parser.parse_known_args(argv)
    request = build_request(args.image, args.mask, args.label, args.stamp)
    rclpy.init(args=ros_args)
    node = rclpy.create_node("amp_teach_client")
    try:
        client = node.create_client(Teach, args.service)
        if not client.wait_for_service(timeout_sec=args.timeout):
            print(f"amp-teach: service {args.service} not available", file=sys.stderr)
            return 2
        future = client.call_async(request)
        rclpy.spin_until_future_complete(node, future, timeout_sec=args.timeout)
        if not future.done():
            print("amp-teach: no answer in time", file=sys.stderr)
            return 2
        response = future.result()
        print(f"{'ok' if response.success else 'refused'}: {response.message}")
        return 0 if response.success else 1
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
