"""sensor_msgs/Image messages for rclpy: :func:`amp_ros.image_codec.image_message` with rclpy's
message classes. Used by the node, the teach client, the replay and the tests."""

from __future__ import annotations

from typing import Any

import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from amp_ros.image_codec import ImageTypes, image_message

RCLPY_IMAGE_TYPES = ImageTypes(image=Image, header=Header, time=Time)


def image_msg(
    array: np.ndarray,
    encoding: str,
    *,
    header: Any = None,
    stamp_ns: int | None = None,
    frame_id: str = "",
) -> Image:
    """An rclpy sensor_msgs/Image of ``array``: with ``header``, or stamped ``stamp_ns`` with
    ``frame_id``, or with the default (empty) header."""
    return image_message(RCLPY_IMAGE_TYPES, array, encoding, header=header, stamp_ns=stamp_ns,
                         frame_id=frame_id)
