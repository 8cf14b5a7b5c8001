"""``amp-teach``: teach the running node a class from a PNG frame and mask (calls /amp/teach)."""

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


def build_request(image_path: str | None, mask_path: str, label: str) -> Teach.Request:
    """A Teach request from files (no image = the last frame the node processed)."""
    request = Teach.Request(label=label)
    if image_path:
        rgb = cv2.cvtColor(_read(image_path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        request.image = image_msg(rgb, "rgb8")
    mask = _read(mask_path, cv2.IMREAD_GRAYSCALE)
    request.mask = image_msg(mask, "mono8")
    return request


def main(argv: list[str] | None = None) -> int:
    """Send one teach request and print the node's answer; exit 0 on success."""
    parser = argparse.ArgumentParser(prog="amp-teach", description=__doc__)
    parser.add_argument("--image", help="frame (PNG/JPEG); omit to label the last processed frame")
    parser.add_argument("--mask", required=True, help="mask PNG, non-zero = the object")
    parser.add_argument("--label", required=True, help="class name")
    parser.add_argument("--service", default="/amp/teach")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait")
    args, ros_args = parser.parse_known_args(argv)
    request = build_request(args.image, args.mask, args.label)
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
