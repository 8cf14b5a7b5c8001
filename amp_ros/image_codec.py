"""sensor_msgs/Image and CompressedImage <-> numpy, and header stamps <-> nanoseconds, without ROS.

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

import cv2
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
    "mono16": (np.dtype(np.uint16), 1),
    "rgb16": (np.dtype(np.uint16), 3),
    "bgr16": (np.dtype(np.uint16), 3),
    "rgba16": (np.dtype(np.uint16), 4),
    "bgra16": (np.dtype(np.uint16), 4),
    # YUV 4:2:2, two bytes a pixel: uyvy (alias yuv422) is U Y0 V Y1, yuyv (yuv422_yuy2) Y0 U Y1 V.
    "uyvy": (np.dtype(np.uint8), 2),
    "yuv422": (np.dtype(np.uint8), 2),
    "yuyv": (np.dtype(np.uint8), 2),
    "yuv422_yuy2": (np.dtype(np.uint8), 2),
    **{f"bayer_{pattern}8": (np.dtype(np.uint8), 1) for pattern in ("rggb", "bggr", "gbrg", "grbg")},
    **{f"bayer_{pattern}16": (np.dtype(np.uint16), 1) for pattern in ("rggb", "bggr", "gbrg", "grbg")},
}

# YUV 4:2:2 encodings -> OpenCV conversion (BT.601, video range, as cv_bridge converts them).
_YUV422: dict[str, int] = {
    "uyvy": cv2.COLOR_YUV2RGB_UYVY,
    "yuv422": cv2.COLOR_YUV2RGB_UYVY,
    "yuyv": cv2.COLOR_YUV2RGB_YUYV,
    "yuv422_yuy2": cv2.COLOR_YUV2RGB_YUYV,
}

# ROS Bayer encodings (8 and 16 bit) -> OpenCV demosaicing code, as cv_bridge maps them (OpenCV
# names a pattern by its second row's first two pixels: ROS rggb is OpenCV's BayerBG).
_BAYER: dict[str, int] = {
    f"bayer_{pattern}{bits}": code
    for pattern, code in (
        ("rggb", cv2.COLOR_BayerBG2RGB),
        ("bggr", cv2.COLOR_BayerRG2RGB),
        ("gbrg", cv2.COLOR_BayerGR2RGB),
        ("grbg", cv2.COLOR_BayerGB2RGB),
    )
    for bits in (8, 16)
}

# The encodings a camera frame may have: those cv_bridge converts to rgb8.
COLOUR_ENCODINGS = (
    "rgb8", "bgr8", "rgba8", "bgra8", "mono8",
    "rgb16", "bgr16", "rgba16", "bgra16", "mono16",
    *_YUV422, *_BAYER,
)  # fmt: skip


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
    """Decode a camera frame to H×W×3 uint8 RGB (the network's input), as cv_bridge would to rgb8.

    8 and 16-bit rgb/bgr/rgba/bgra/mono, Bayer mosaics (demosaiced by OpenCV) and YUV 4:2:2
    (uyvy/yuv422, yuyv/yuv422_yuy2); 16-bit values are scaled by 255/65535 after the colour
    conversion, as cv_bridge does.
    """
    encoding = str(msg.encoding)
    if encoding not in COLOUR_ENCODINGS:
        raise InputError(
            f"frame encoding {encoding!r} is not a colour encoding; "
            f"expected one of {list(COLOUR_ENCODINGS)}"
        )
    pixels = image_to_array(msg)
    if encoding in _BAYER:
        return _to_rgb8(_demosaic(pixels, encoding))
    if encoding in _YUV422:
        if pixels.shape[1] % 2:
            raise InputError(f"{encoding} image width {pixels.shape[1]} is odd; 4:2:2 pairs pixels")
        return cv2.cvtColor(pixels, _YUV422[encoding])
    if pixels.ndim == 2:
        return _to_rgb8(np.repeat(pixels[:, :, None], 3, axis=2))
    if encoding.startswith("bgr"):
        pixels = pixels[:, :, 2::-1]
    return _to_rgb8(pixels[:, :, :3])


# The codecs of image_transport's compressed plugin (CompressedImage.format), as OpenCV decodes them.
COMPRESSED_CODECS = ("jpeg", "png", "tiff")
_CODEC_ALIASES = {"jpeg": "jpeg", "jpg": "jpeg", "png": "png", "tiff": "tiff", "tif": "tiff"}


def compressed_codec(format: str) -> str:
    """The codec a CompressedImage ``format`` names: "jpeg", "png" or "tiff".

    Accepts image_transport's forms: the bare codec ("jpeg", "png") of older publishers and
    ``"<encoding>; <codec> compressed <target>"`` (e.g. "rgb8; jpeg compressed bgr8"); raises
    InputError for anything else (e.g. compressedDepth, a video codec).
    """
    text = str(format).strip().lower()
    head, _, tail = text.partition(";")
    words = (tail if tail else head).split()
    if "compresseddepth" in words:
        raise InputError(
            f"compressed image format {format!r} is a compressedDepth depth map, not a camera frame"
        )
    codec = _CODEC_ALIASES.get(words[0]) if words else None
    if codec is None:
        raise InputError(
            f"unsupported compressed image format {format!r}; expected image_transport's "
            f"compressed formats with one of {list(COMPRESSED_CODECS)} "
            '(e.g. "jpeg", "png", "rgb8; jpeg compressed bgr8")'
        )
    return codec


def decode_compressed(format: str, data: bytes) -> np.ndarray:
    """Decode a sensor_msgs/CompressedImage (its ``format`` and ``data``) to H×W×3 uint8 RGB.

    Decoded with OpenCV as image_transport's compressed subscriber does (colour comes out BGR and
    is swapped to RGB, grey is repeated into three channels, alpha is dropped, 16-bit values
    are scaled to 8 bits like cv_bridge); a mono image whose original encoding is a Bayer
    pattern ("bayer_rggb8; png compressed bayer_rggb8") is demosaiced. Raises InputError on an
    unsupported format or empty or corrupt data.
    """
    codec = compressed_codec(format)
    raw = bytes(data)
    if not raw:
        raise InputError(f"compressed image ({format!r}) has no data")
    pixels = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.size == 0:
        raise InputError(
            f"could not decode {len(raw)} bytes as {codec} (format {format!r}): corrupt or truncated data"
        )
    original = str(format).partition(";")[0].strip().lower()
    if pixels.ndim == 2 and original in _BAYER:
        return _to_rgb8(_demosaic(pixels, original))
    if pixels.ndim == 2:
        return _to_rgb8(cv2.cvtColor(pixels, cv2.COLOR_GRAY2RGB))
    if pixels.shape[2] == 4:
        return _to_rgb8(cv2.cvtColor(pixels, cv2.COLOR_BGRA2RGB))
    if pixels.shape[2] == 3:
        return _to_rgb8(cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB))
    raise InputError(f"decoded {codec} image has {pixels.shape[2]} channels; expected 1, 3 or 4")


def _demosaic(mosaic: np.ndarray, encoding: str) -> np.ndarray:
    """A Bayer mosaic (H×W, 8 or 16 bit) as H×W×3 RGB of the same depth, as cv_bridge does."""
    if min(mosaic.shape[:2]) < 3:
        raise InputError(f"{encoding} image of {mosaic.shape[1]}×{mosaic.shape[0]} is too small to "
                         "demosaic (needs at least 3×3 pixels)")
    return cv2.cvtColor(mosaic, _BAYER[encoding])


def _to_rgb8(pixels: np.ndarray) -> np.ndarray:
    """uint8 as is; uint16 scaled to uint8 as cv_bridge does (× 255/65535, rounded)."""
    if pixels.dtype == np.uint16:
        pixels = np.rint(pixels * (255.0 / 65535.0)).astype(np.uint8)
    if pixels.dtype != np.uint8:
        raise InputError(f"decoded image has pixel type {pixels.dtype}; expected 8 or 16 bits")
    return np.ascontiguousarray(pixels)


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
