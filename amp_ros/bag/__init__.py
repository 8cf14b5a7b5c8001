"""Bags of frames for amp_ros: convert datasets and videos to rosbag2 and read them, without ROS.

:mod:`amp_ros.bag.write` and :mod:`amp_ros.bag.read` use the pure-Python ``rosbags`` library and
import no ROS. Replaying a bag into the ROS graph is :mod:`amp_ros.ros.replay`
(``from amp_ros.ros.replay import replay_bag``; ``amp-bag replay``).
"""

from __future__ import annotations

from amp_ros.bag.read import (
    FLOW_TOPIC,
    GT_TOPIC,
    IMAGE_TOPIC,
    NAME_TOPIC,
    BagError,
    BagFrame,
    FrameBag,
    read_frames,
)
from amp_ros.bag.write import (
    DatasetError,
    WrittenBag,
    davis_sequences,
    davis_to_bag,
    fbms_sequences,
    fbms_to_bag,
    video_to_bag,
    write_bag,
)

__all__ = [
    "FLOW_TOPIC",
    "GT_TOPIC",
    "IMAGE_TOPIC",
    "NAME_TOPIC",
    "BagError",
    "BagFrame",
    "DatasetError",
    "FrameBag",
    "WrittenBag",
    "davis_sequences",
    "davis_to_bag",
    "fbms_sequences",
    "fbms_to_bag",
    "read_frames",
    "video_to_bag",
    "write_bag",
]
