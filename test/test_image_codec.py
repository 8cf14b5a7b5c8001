"""sensor_msgs/Image fields ⇄ numpy without ROS: encodings, step padding, byte order."""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from amp_ros.errors import InputError
from amp_ros.image_codec import array_to_fields, decode_compressed, image_to_array, image_to_rgb

# One 2×3 RGB image, rows top to bottom.
RGB = np.array(
    [
        [[255, 0, 0], [0, 255, 0], [0, 0, 255]],
        [[10, 20, 30], [40, 50, 60], [70, 80, 90]],
    ],
    dtype=np.uint8,
)


def _msg(data: bytes, encoding: str, height: int, width: int, step: int, big: int = 0) -> SimpleNamespace:
    return SimpleNamespace(
        data=data, encoding=encoding, height=height, width=width, step=step, is_bigendian=big
    )


def _padded(pixels: np.ndarray, padding: int) -> bytes:
    """Row-major bytes with ``padding`` junk bytes after every row."""
    rows = pixels.reshape(pixels.shape[0], -1)
    junk = np.full((rows.shape[0], padding), 0xAB, np.uint8)
    return np.concatenate([rows.view(np.uint8), junk], axis=1).tobytes()


@pytest.mark.parametrize(
    ("encoding", "pixels"),
    [
        ("rgb8", RGB),
        ("bgr8", RGB[:, :, ::-1]),
        ("rgba8", np.concatenate([RGB, np.full((2, 3, 1), 7, np.uint8)], axis=2)),
        ("bgra8", np.concatenate([RGB[:, :, ::-1], np.full((2, 3, 1), 7, np.uint8)], axis=2)),
    ],
)
def test_colour_encodings_decode_to_rgb(encoding: str, pixels: np.ndarray) -> None:
    """rgb8, bgr8, rgba8, bgra8 all give the same H×W×3 uint8 RGB image."""
    channels = pixels.shape[2]
    rgb = image_to_rgb(_msg(pixels.tobytes(), encoding, 2, 3, 3 * channels))
    assert rgb.dtype == np.uint8 and rgb.flags.c_contiguous
    assert np.array_equal(rgb, RGB)


def test_mono8_decodes_to_grey_rgb() -> None:
    """mono8 is repeated into three equal channels."""
    grey = np.array([[0, 128, 255], [1, 2, 3]], np.uint8)
    rgb = image_to_rgb(_msg(grey.tobytes(), "mono8", 2, 3, 3))
    assert rgb.shape == (2, 3, 3)
    assert all(np.array_equal(rgb[:, :, c], grey) for c in range(3))


@pytest.mark.parametrize("encoding", ["rgb8", "mono8"])
def test_step_padding_is_skipped(encoding: str) -> None:
    """Rows padded to ``step`` bytes decode to the unpadded pixels."""
    pixels = RGB if encoding == "rgb8" else RGB[:, :, 0].copy()
    row = 9 if encoding == "rgb8" else 3
    msg = _msg(_padded(pixels, 5), encoding, 2, 3, row + 5)
    assert np.array_equal(image_to_array(msg), pixels)


def test_big_endian_32fc2() -> None:
    """Big-endian float pairs (a flow field) decode to native float32 values."""
    flow = np.array([[[1.5, -2.0], [0.25, 3.0]]], np.float32)  # 1×2×2
    msg = _msg(flow.astype(">f4").tobytes(), "32FC2", 1, 2, 16, big=1)
    decoded = image_to_array(msg)
    assert decoded.dtype == np.float32 and decoded.dtype.isnative
    assert np.array_equal(decoded, flow)
    little = _msg(flow.astype("<f4").tobytes(), "32FC2", 1, 2, 16, big=0)
    assert np.array_equal(image_to_array(little), flow)


def test_32fc2_with_padding() -> None:
    """Padded float rows: step counts bytes, not pixels."""
    flow = np.arange(12, dtype=np.float32).reshape(2, 3, 2)
    msg = _msg(_padded(flow, 8), "32FC2", 2, 3, 3 * 8 + 8)
    assert np.array_equal(image_to_array(msg), flow)


def test_wrong_data_length() -> None:
    """Data that is not step×height bytes long is an InputError with both numbers."""
    with pytest.raises(InputError, match=r"image data has 17 bytes, expected step×height = 9×2"):
        image_to_array(_msg(RGB.tobytes()[:-1], "rgb8", 2, 3, 9))
    with pytest.raises(InputError, match="image data has 19 bytes"):
        image_to_array(_msg(RGB.tobytes() + b"\0", "rgb8", 2, 3, 9))


def test_step_too_short_and_empty_image() -> None:
    """A step shorter than one row, and zero-sized images, are refused."""
    with pytest.raises(InputError, match="step 8 is shorter than one row of 9 bytes"):
        image_to_array(_msg(RGB.tobytes(), "rgb8", 2, 3, 8))
    with pytest.raises(InputError, match=r"image has no pixels \(0×2\)"):
        image_to_array(_msg(b"", "rgb8", 2, 0, 0))


def test_unsupported_encodings() -> None:
    """Unknown encodings list the supported ones; non-colour encodings are not frames."""
    with pytest.raises(InputError, match=r"unsupported image encoding 'nv12'; expected one of \["):
        image_to_array(_msg(b"", "nv12", 1, 1, 2))
    with pytest.raises(InputError, match="frame encoding '32FC1' is not a colour encoding"):
        image_to_rgb(_msg(b"\0" * 4, "32FC1", 1, 1, 4))
    with pytest.raises(InputError, match="unsupported image encoding 'jpeg'"):
        array_to_fields(RGB, "jpeg")


@pytest.mark.parametrize(
    ("encoding", "array"),
    [
        ("rgb8", RGB),
        ("bgra8", np.arange(24, dtype=np.uint8).reshape(2, 3, 4)),
        ("mono8", np.array([[0, 255, 9]], np.uint8)),
        ("8UC1", np.array([[0, 1], [2, 255]], np.uint8)),
        ("32FC1", np.array([[0.5, -1.0]], np.float32)),
        ("32FC2", np.arange(12, dtype=np.float32).reshape(2, 3, 2)),
    ],
)
def test_array_to_fields_round_trip(encoding: str, array: np.ndarray) -> None:
    """array → Image fields → array gives the array back; fields are little-endian, unpadded."""
    fields = array_to_fields(array, encoding)
    assert fields["encoding"] == encoding and fields["is_bigendian"] == 0
    assert (fields["height"], fields["width"]) == array.shape[:2]
    assert fields["step"] * fields["height"] == len(fields["data"]) == array.nbytes
    assert np.array_equal(image_to_array(SimpleNamespace(**fields)), array)


def test_array_to_fields_checks_layout() -> None:
    """dtype or channel count that the encoding does not name is refused with both."""
    with pytest.raises(
        InputError, match=r"rgb8 needs a uint8 array with 3 channel\(s\), got uint8 of shape \(2, 3\)"
    ):
        array_to_fields(RGB[:, :, 0], "rgb8")
    with pytest.raises(InputError, match="32FC2 needs a float32 array with 2 channel"):
        array_to_fields(np.zeros((2, 3, 2), np.float64), "32FC2")


# --- the encodings cv_bridge converts: 16 bit, Bayer, YUV 4:2:2 ---------------------------------

# 16-bit values and their 8-bit value as cv_bridge scales them (v × 255/65535 = v/257, rounded):
# 128/257 = 0.498 → 0 and 129/257 = 0.502 → 1 (a shift by 8 bits would give 0 for both).
WIDE = np.array([0, 128, 129, 25700, 65535], np.uint16)
NARROW = np.array([0, 0, 1, 100, 255], np.uint8)


@pytest.mark.parametrize("big", [0, 1])
def test_mono16_scales_like_cv_bridge(big: int) -> None:
    """mono16 (either byte order) → three equal channels of round(v/257)."""
    data = WIDE.astype(">u2" if big else "<u2").tobytes()
    rgb = image_to_rgb(_msg(data, "mono16", 1, 5, 10, big=big))
    assert np.array_equal(rgb, np.repeat(NARROW[None, :, None], 3, axis=2))


@pytest.mark.parametrize("encoding", ["rgb16", "bgr16", "rgba16", "bgra16"])
def test_16_bit_colour_scales_like_cv_bridge(encoding: str) -> None:
    """rgb16/bgr16/rgba16/bgra16: channel order as named, alpha dropped, round(v/257)."""
    r, g, b = WIDE, WIDE[::-1], np.full(5, 257 * 7, np.uint16)
    channels = [r, g, b] if encoding.startswith("rgb") else [b, g, r]
    if encoding.endswith("a16"):
        channels.append(np.full(5, 65535, np.uint16))
    pixels = np.stack(channels, axis=-1)[None]  # 1×5×C
    rgb = image_to_rgb(SimpleNamespace(**array_to_fields(pixels, encoding)))
    expected = np.stack([NARROW, NARROW[::-1], np.full(5, 7, np.uint8)], axis=-1)[None]
    assert rgb.dtype == np.uint8 and np.array_equal(rgb, expected)


# A flat colour R=200, G=100, B=50 seen through each Bayer pattern: the 2×2 tile (top row, bottom
# row) tiled to 4×4 (OpenCV demosaics from 3×3 up). Every pixel must come back (200, 100, 50); a
# wrong pattern would swap R and B or mix G into them.
BAYER_TILES = {
    "rggb": [[200, 100], [100, 50]],
    "bggr": [[50, 100], [100, 200]],
    "gbrg": [[100, 50], [200, 100]],
    "grbg": [[100, 200], [50, 100]],
}


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("pattern", sorted(BAYER_TILES))
def test_bayer_demosaics_a_flat_colour(pattern: str, bits: int) -> None:
    """bayer_{rggb,bggr,gbrg,grbg}{8,16} → the flat colour exactly (16 bit: 257·v → v)."""
    mosaic = np.tile(np.array(BAYER_TILES[pattern], np.uint16 if bits == 16 else np.uint8), (2, 2))
    if bits == 16:
        mosaic = mosaic * np.uint16(257)
    encoding = f"bayer_{pattern}{bits}"
    rgb = image_to_rgb(SimpleNamespace(**array_to_fields(mosaic, encoding)))
    assert np.array_equal(rgb, np.full((4, 4, 3), (200, 100, 50), np.uint8))


def test_bayer_too_small_is_refused() -> None:
    """A lone 2×2 tile cannot be demosaiced by OpenCV: a clear error, not a black image."""
    tile = np.array(BAYER_TILES["rggb"], np.uint8)
    with pytest.raises(InputError, match=r"bayer_rggb8 image of 2×2 is too small to demosaic"):
        image_to_rgb(SimpleNamespace(**array_to_fields(tile, "bayer_rggb8")))


# One pixel pair in each byte order: (Y0, U, Y1, V) for yuyv, (U, Y0, V, Y1) for uyvy. BT.601 video
# range, R = 1.164(Y−16) + 1.596(V−128), G = 1.164(Y−16) − 0.391(U−128) − 0.813(V−128),
# B = 1.164(Y−16) + 2.018(U−128): Y 16 / 235 with U = V = 128 are black / white; Y 126 is
# 1.164·110 = 128.04 → grey 128; Y 41, U 240, V 110 is R 29.1−28.7 → 0, G 29.1−43.8+14.6 → 0,
# B 29.1+226.0 → 255: blue.
YUV_PAIRS = [
    ((16, 128, 235, 128), [[0, 0, 0], [255, 255, 255]]),
    ((126, 128, 126, 128), [[128, 128, 128], [128, 128, 128]]),
    ((41, 240, 41, 110), [[0, 0, 255], [0, 0, 255]]),
]


@pytest.mark.parametrize(("yuyv", "expected"), YUV_PAIRS)
@pytest.mark.parametrize("encoding", ["yuyv", "yuv422_yuy2", "uyvy", "yuv422"])
def test_yuv422_pixel_pairs(encoding: str, yuyv: tuple[int, ...], expected: list) -> None:
    """yuyv/yuv422_yuy2 and uyvy/yuv422 (cv_bridge's YUV422 is UYVY) decode known pairs exactly."""
    y0, u, y1, v = yuyv
    data = bytes([y0, u, y1, v] if encoding in ("yuyv", "yuv422_yuy2") else [u, y0, v, y1])
    rgb = image_to_rgb(_msg(data * 2, encoding, 2, 2, 4))  # two rows of the same pair
    assert rgb.dtype == np.uint8 and np.array_equal(rgb, np.array([expected, expected], np.uint8))


def test_yuv422_odd_width_is_refused() -> None:
    """4:2:2 pairs pixels: an odd width is an error that says so."""
    with pytest.raises(InputError, match="yuyv image width 3 is odd"):
        image_to_rgb(_msg(b"\x80" * 6, "yuyv", 1, 3, 6))


# --- building messages, stamps ------------------------------------------------------------------


def test_split_and_join_stamps() -> None:
    from amp_ros.image_codec import split_stamp, stamp_ns

    stamp = 1_700_000_000 * 1_000_000_000 + 41_666_667
    assert split_stamp(stamp) == (1_700_000_000, 41_666_667)
    header = SimpleNamespace(stamp=SimpleNamespace(sec=1_700_000_000, nanosec=41_666_667))
    assert stamp_ns(header) == stamp


def test_image_message_for_rclpy_and_rosbags() -> None:
    """One builder: rclpy's classes (the node, teach client, replay) and a rosbags type store
    (the bag writer) get the same fields, header and pixels."""
    from amp_ros.bag.read import IMAGE_TYPE, typestore
    from amp_ros.image_codec import ImageTypes, image_message, stamp_ns
    from amp_ros.ros.messages import image_msg

    store = typestore()
    bag_types = ImageTypes(image=store.types[IMAGE_TYPE], header=store.types["std_msgs/msg/Header"],
                           time=store.types["builtin_interfaces/msg/Time"],
                           data=lambda raw: np.frombuffer(raw, np.uint8))
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    stamp = 5 * 1_000_000_000 + 7
    for msg in (image_msg(rgb, "rgb8", stamp_ns=stamp, frame_id="camera"),
                image_message(bag_types, rgb, "rgb8", stamp_ns=stamp, frame_id="camera")):
        assert (msg.height, msg.width, msg.encoding, msg.step) == (2, 3, "rgb8", 9)
        assert stamp_ns(msg.header) == stamp and msg.header.frame_id == "camera"
        np.testing.assert_array_equal(image_to_array(msg), rgb)
    bare = image_msg(rgb[:, :, 0].copy(), "mono8")  # a Teach request's image: default header
    assert stamp_ns(bare.header) == 0 and bare.header.frame_id == ""
    kept = image_msg(rgb, "rgb8", header=image_msg(rgb, "rgb8", stamp_ns=stamp).header)
    assert stamp_ns(kept.header) == stamp  # the node copies the input frame's header


# --- CompressedImage (image_transport's compressed plugin) ----------------------------------------


def _encoded(ext: str, pixels: np.ndarray) -> bytes:
    """``pixels`` (OpenCV order: BGR, BGRA or grey) encoded by OpenCV as ``ext``."""
    ok, buffer = cv2.imencode(ext, pixels)
    assert ok
    return buffer.tobytes()


@pytest.mark.parametrize("format", ["png", "rgb8; png compressed bgr8", "bgr8; png compressed bgr8"])
def test_decode_compressed_png_is_exact_rgb(format: str) -> None:
    """A PNG of a BGR image (what the compressed publisher writes) decodes to the RGB pixels."""
    assert np.array_equal(decode_compressed(format, _encoded(".png", RGB[:, :, ::-1].copy())), RGB)


def test_decode_compressed_jpeg_grey_alpha_tiff_and_16_bit() -> None:
    """jpeg (lossy: close), grey PNG (three equal channels), BGRA PNG (alpha dropped), TIFF, and
    16-bit PNG scaled like cv_bridge (× 255/65535, rounded: 128 → 0, 129 → 1, 65535 → 255)."""
    flat = np.full((16, 16, 3), (30, 120, 210), np.uint8)  # BGR
    decoded = decode_compressed("rgb8; jpeg compressed bgr8", _encoded(".jpg", flat))
    assert decoded.shape == (16, 16, 3) and decoded.dtype == np.uint8
    assert np.abs(decoded.astype(int) - (210, 120, 30)).max() <= 2
    grey = np.array([[0, 128, 255], [1, 2, 3]], np.uint8)
    assert np.array_equal(decode_compressed("mono8; png compressed mono8", _encoded(".png", grey)),
                          np.repeat(grey[:, :, None], 3, axis=2))
    bgra = np.concatenate([RGB[:, :, ::-1], np.full((2, 3, 1), 7, np.uint8)], axis=2)
    assert np.array_equal(decode_compressed("png", _encoded(".png", bgra)), RGB)
    assert np.array_equal(decode_compressed("tiff", _encoded(".tiff", RGB[:, :, ::-1].copy())), RGB)
    mono16 = np.array([[0, 128, 129, 65535]], np.uint16)
    assert np.array_equal(decode_compressed("mono16; png compressed mono16", _encoded(".png", mono16)),
                          np.repeat(np.array([[0, 0, 1, 255]], np.uint8)[:, :, None], 3, axis=2))


def test_decode_compressed_bayer_mosaic_is_demosaiced() -> None:
    """A mono PNG whose original encoding is bayer_rggb8 is demosaiced (a flat colour stays it)."""
    mosaic = np.tile(np.array([[200, 100], [100, 50]], np.uint8), (2, 2))  # R G / G B
    rgb = decode_compressed("bayer_rggb8; png compressed bayer_rggb8", _encoded(".png", mosaic))
    assert np.array_equal(rgb, np.full((4, 4, 3), (200, 100, 50), np.uint8))


@pytest.mark.parametrize(
    ("format", "data", "message"),
    [
        ("jpeg", b"", r"compressed image \('jpeg'\) has no data"),
        ("png", b"not a png at all", r"could not decode 16 bytes as png \(format 'png'\): corrupt"),
        ("h264", b"\0\0\1", r"unsupported compressed image format 'h264'.*\"jpeg\", \"png\""),
        ("", b"\0", "unsupported compressed image format ''"),
        ("16UC1; compressedDepth png", b"\0", "compressedDepth depth map, not a camera frame"),
    ],
)
def test_decode_compressed_refuses_bad_input(format: str, data: bytes, message: str) -> None:
    """Empty, corrupt and truncated data and unsupported formats are InputErrors that say so."""
    with pytest.raises(InputError, match=message):
        decode_compressed(format, data)


def test_decode_compressed_truncated_jpeg() -> None:
    """Half a JPEG is refused, not returned half grey."""
    data = _encoded(".jpg", np.full((32, 32, 3), 90, np.uint8))
    with pytest.raises(InputError, match="corrupt or truncated"):
        decode_compressed("jpeg", data[: len(data) // 2])
