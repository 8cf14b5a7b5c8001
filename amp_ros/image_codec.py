"""sensor_msgs/Image <-> numpy, and header stamps <-> nanoseconds, without importing ROS.

Decoding works on any object with the Image fields (an rclpy message, a rosbags message or a
dict-like record). :func:`image_message` builds an Image of whichever message classes it is given
(:class:`ImageTypes`): :func:`amp_ros.ros.messages.image_msg` gives it rclpy's, the bag writer
those of its rosbags type store. So the node, the teach client, the replay and the bag writer
share one conversion, one header layout and one stamp split.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from amp_ros.errors import InputError

# encoding -> (numpy dtype, channels)
_LAYOUTS: dict[str, tuple[np.dtype, int]] = {
    "rgb8": (np.dtype(np.uint8), 3),
    "bgr8": (np.dtype(np.uint8), 3),
    "rgba8": (np.dtype(np.uint8), 4),
    "bgra8": (np.dtype(np.uint8), 4),
    "mono8": (np.dtype(np.uint8), 1),
    "8UC1": (np.dtype(np.uint8), 1),
    "32FC1": (np.dtype(np.float32), 1),
    "32FC2": (np.dtype(np.float32), 2),
}

COLOUR_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8")


def image_to_array(msg: Any) -> np.ndarray:
    """Decode an Image message's pixels: H×W for one channel, H×W×C otherwise (a copy).

    Honours ``step`` row padding and ``is_bigendian``; raises InputError naming the problem.
    """
    encoding = str(msg.encoding)
    if encoding not in _LAYOUTS:
        raise InputError(
            f"unsupported image encoding {encoding!r}; expected one of {sorted(_LAYOUTS)}"
        )
    dtype, channels = _LAYOUTS[encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise InputError(f"image has no pixels ({width}×{height})")
    row_bytes = width * channels * dtype.itemsize
    if step < row_bytes:
        raise InputError(f"step {step} is shorter than one row of {row_bytes} bytes")
    data = np.frombuffer(bytes(msg.data), dtype=np.uint8)
    if data.size != step * height:
        raise InputError(
            f"image data has {data.size} bytes, expected step×height = {step}×{height}"
        )
    rows = data.reshape(height, step)[:, :row_bytes]
    if dtype.itemsize > 1:
        dtype = dtype.newbyteorder(">" if msg.is_bigendian else "<")
    pixels = np.ascontiguousarray(rows).view(dtype).reshape(height, width, channels)
    pixels = pixels.astype(dtype.newbyteorder("="), copy=True)
    return pixels[:, :, 0] if channels == 1 else pixels


def image_to_rgb(msg: Any) -> np.ndarray:
    """Decode a colour or mono Image to H×W×3 uint8 RGB (the network's input)."""
    encoding = str(msg.encoding)
    if encoding not in COLOUR_ENCODINGS:
        raise InputError(
            f"frame encoding {encoding!r} is not a colour encoding; "
            f"expected one of {list(COLOUR_ENCODINGS)}"
        )
    pixels = image_to_array(msg)
    if encoding == "mono8":
        return np.repeat(pixels[:, :, None], 3, axis=2)
    if encoding.startswith("bgr"):
        pixels = pixels[:, :, 2::-1]
    return np.ascontiguousarray(pixels[:, :, :3])


def array_to_fields(array: np.ndarray, encoding: str) -> dict[str, Any]:
    """The Image fields (height, width, encoding, is_bigendian, step, data) for an array.

    ``array`` is H×W or H×W×C with the dtype and channel count that ``encoding`` names.
    """
    if encoding not in _LAYOUTS:
        raise InputError(f"unsupported image encoding {encoding!r}")
    dtype, channels = _LAYOUTS[encoding]
    array = np.asarray(array)
    shape_channels = 1 if array.ndim == 2 else (array.shape[2] if array.ndim == 3 else -1)
    if shape_channels != channels or array.dtype != dtype:
        raise InputError(
            f"{encoding} needs a {dtype} array with {channels} channel(s), "
            f"got {array.dtype} of shape {array.shape}"
        )
    array = np.ascontiguousarray(array, dtype=dtype.newbyteorder("<"))
    height, width = array.shape[:2]
    return {
        "height": height,
        "width": width,
        "encoding": encoding,
        "is_bigendian": 0,
        "step": width * channels * dtype.itemsize,
        "data": array.tobytes(),
    }


NS_PER_S = 1_000_000_000


def split_stamp(stamp_ns: int) -> tuple[int, int]:
    """A stamp in integer nanoseconds as header (sec, nanosec)."""
    return divmod(int(stamp_ns), NS_PER_S)


def stamp_ns(header: Any) -> int:
    """A std_msgs/Header's stamp in integer nanoseconds (rclpy or rosbags message)."""
    return int(header.stamp.sec) * NS_PER_S + int(header.stamp.nanosec)


@dataclass(frozen=True)
class ImageTypes:
    """The message classes an Image is built from, and how its ``data`` field takes bytes."""

    image: Callable[..., Any]
    header: Callable[..., Any]
    time: Callable[..., Any]
    data: Callable[[bytes], Any] = bytes


def image_message(
    types: ImageTypes,
    array: np.ndarray,
    encoding: str,
    *,
    header: Any = None,
    stamp_ns: int | None = None,
    frame_id: str = "",
) -> Any:
    """An Image of ``array`` (see :func:`array_to_fields`) built from ``types``.

    The header is ``header`` as given, else one stamped ``stamp_ns`` with ``frame_id``, else
    none at all (the type's default: zero stamp, empty frame id, as in a Teach request).
    """
    fields = array_to_fields(array, encoding)
    fields["data"] = types.data(fields["data"])
    if header is None and stamp_ns is not None:
        sec, nanosec = split_stamp(stamp_ns)
        header = types.header(stamp=types.time(sec=sec, nanosec=nanosec), frame_id=frame_id)
    if header is not None:
        fields["header"] = header
    return types.image(**fields)
