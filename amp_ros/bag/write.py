"""Convert DAVIS, FBMS-59, video files and image folders into rosbag2 (MCAP) bags, without ROS.

Every bag holds, per frame and all with the same stamp (header stamp = log time):

* ``/camera/image_raw``  sensor_msgs/Image rgb8, frame_id "camera" (with ``image_format="jpeg"``
  or ``"png"``: ``/camera/image_raw/compressed``, sensor_msgs/CompressedImage as
  image_transport's compressed plugin writes it, format "rgb8; jpeg compressed bgr8");
* ``/camera/frame_name`` std_msgs/String, the source frame name (e.g. "00000"), so that results
  can be written under the same names;
* ``/camera/flow``       sensor_msgs/Image 32FC2 (with ``flow="dis"``): OpenCV DIS flow from the
  previous frame to this one in pixels (dx, dy); the first frame gets zero flow;
* ``/ground_truth/mask`` sensor_msgs/Image mono8 0/255, only at annotated frames.

Stamps start at a fixed time (:data:`STAMP_START_NS`) and grow by 1/fps. The metadata
custom_data holds ``amp_ros.sequence``, ``amp_ros.source`` and ``amp_ros.fps``.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer, WriterError
from tqdm import tqdm

from amp_ros.bag.read import (
    COMPRESSED_IMAGE_TYPE,
    COMPRESSED_SUFFIX,
    FLOW_TOPIC,
    FPS_KEY,
    FRAME_ID,
    GT_TOPIC,
    IMAGE_TOPIC,
    IMAGE_TYPE,
    NAME_TOPIC,
    SEQUENCE_KEY,
    SOURCE_KEY,
    STRING_TYPE,
    BagError,
    typestore,
)
from amp_ros.datasets import (
    IMAGE_SUFFIXES,
    DatasetError,
    VideoSequence,
    image_files,
    load_sequence,
    read_frame,
)
from amp_ros.datasets import davis_sequences as davis_sequences  # re-exported: amp-bag lists
from amp_ros.datasets import fbms_sequences as fbms_sequences  # the sequences to convert
from amp_ros.image_codec import ImageTypes, image_message

if TYPE_CHECKING:
    from rosbags.interfaces import Connection

STAMP_START_NS = 1_700_000_000 * 1_000_000_000  # 2023-11-14T22:13:20Z, fixed for repeatability
DEFAULT_FPS = 24.0
FLOW_METHODS = ("none", "dis")
IMAGE_FORMATS = ("raw", "jpeg", "png")
# image_transport's compressed plugin defaults: jpeg_quality 95, png_level 3.
_ENCODE_PARAMS = {"jpeg": (".jpg", [cv2.IMWRITE_JPEG_QUALITY, 95]),
                  "png": (".png", [cv2.IMWRITE_PNG_COMPRESSION, 3])}  # fmt: skip


@dataclass(frozen=True)
class SourceFrame:
    """A frame to convert: its name, an RGB H×W×3 uint8 image and a mono8 0/255 mask or None."""

    name: str
    rgb: np.ndarray
    gt: np.ndarray | None = None


@dataclass(frozen=True)
class WrittenBag:
    """What :func:`write_bag` wrote."""

    path: Path
    sequence: str
    frames: int
    masks: int
    flow: bool
    seconds: float

    @property
    def size_bytes(self) -> int:
        """The bag's size on disk."""
        return sum(f.stat().st_size for f in self.path.iterdir() if f.is_file())


def frame_stamp_ns(index: int, fps: float) -> int:
    """The stamp of frame ``index`` at ``fps``: STAMP_START_NS + index/fps seconds."""
    return STAMP_START_NS + round(index * 1_000_000_000 / fps)


class _BagWriter:
    """Writes frames as messages; topics are added on first use."""

    def __init__(self, path: Path, *, sequence: str, source: str, fps: float) -> None:
        self._store = typestore()
        self._writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
        self._writer.set_custom_data(SEQUENCE_KEY, sequence)
        self._writer.set_custom_data(SOURCE_KEY, source)
        self._writer.set_custom_data(FPS_KEY, repr(float(fps)))
        self._connections: dict[str, Connection] = {}
        self._types = self._store.types
        self._image_types = ImageTypes(
            image=self._types[IMAGE_TYPE],
            header=self._types["std_msgs/msg/Header"],
            time=self._types["builtin_interfaces/msg/Time"],
            data=lambda raw: np.frombuffer(raw, dtype=np.uint8),
        )

    def __enter__(self) -> _BagWriter:
        self._writer.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self._writer.close()

    def _connection(self, topic: str, msgtype: str) -> Connection:
        if topic not in self._connections:
            self._connections[topic] = self._writer.add_connection(
                topic, msgtype, typestore=self._store
            )
        return self._connections[topic]

    def image(self, topic: str, stamp: int, array: np.ndarray, encoding: str) -> None:
        """Write ``array`` as a sensor_msgs/Image with ``encoding`` on ``topic``."""
        msg = image_message(self._image_types, array, encoding, stamp_ns=stamp, frame_id=FRAME_ID)
        raw = self._store.serialize_cdr(msg, IMAGE_TYPE)
        self._writer.write(self._connection(topic, IMAGE_TYPE), stamp, raw)

    def compressed(self, topic: str, stamp: int, rgb: np.ndarray, codec: str) -> None:
        """Write an RGB frame as a sensor_msgs/CompressedImage (``codec`` jpeg or png) on
        ``topic``, as image_transport's compressed plugin does: BGR pixels, format
        "rgb8; <codec> compressed bgr8"."""
        ext, params = _ENCODE_PARAMS[codec]
        ok, data = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
        if not ok:
            raise BagError(f"OpenCV could not encode a {rgb.shape} frame as {codec}")
        sec, nanosec = divmod(stamp, 1_000_000_000)
        header = self._types["std_msgs/msg/Header"](
            stamp=self._types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec),
            frame_id=FRAME_ID,
        )
        msg = self._types[COMPRESSED_IMAGE_TYPE](
            header=header, format=f"rgb8; {codec} compressed bgr8", data=data.reshape(-1)
        )
        raw = self._store.serialize_cdr(msg, COMPRESSED_IMAGE_TYPE)
        self._writer.write(self._connection(topic, COMPRESSED_IMAGE_TYPE), stamp, raw)

    def string(self, topic: str, stamp: int, text: str) -> None:
        """Write ``text`` as a std_msgs/String on ``topic``, logged at ``stamp``."""
        raw = self._store.serialize_cdr(self._types[STRING_TYPE](data=text), STRING_TYPE)
        self._writer.write(self._connection(topic, STRING_TYPE), stamp, raw)


def _check_frame(frame: SourceFrame, shape: tuple[int, ...] | None) -> None:
    rgb = frame.rgb
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise DatasetError(
            f"frame {frame.name!r} must be H×W×3 uint8 RGB, got {rgb.dtype} {rgb.shape}"
        )
    if shape is not None and rgb.shape != shape:
        raise DatasetError(
            f"frame {frame.name!r} has shape {rgb.shape}, expected {shape} like the first frame"
        )
    if frame.gt is not None and frame.gt.shape != rgb.shape[:2]:
        raise DatasetError(
            f"mask of frame {frame.name!r} has shape {frame.gt.shape}, "
            f"expected {rgb.shape[:2]} like the frame"
        )


def write_bag(
    out: str | Path,
    frames: Iterable[SourceFrame],
    *,
    sequence: str,
    source: str,
    fps: float = DEFAULT_FPS,
    flow: str = "none",
    total: int | None = None,
    progress: bool = False,
    overwrite: bool = False,
    image_format: str = "raw",
) -> WrittenBag:
    """Write ``frames`` into a new MCAP bag at ``out`` (see the module docstring for topics);
    ``image_format`` "jpeg" or "png" writes CompressedImage frames instead of raw rgb8."""
    out = Path(out)
    if flow not in FLOW_METHODS:
        raise ValueError(f"flow must be one of {list(FLOW_METHODS)}, got {flow!r}")
    if image_format not in IMAGE_FORMATS:
        raise ValueError(f"image_format must be one of {list(IMAGE_FORMATS)}, got {image_format!r}")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if out.exists():
        if not overwrite:
            raise BagError(f"{str(out)!r} exists already; remove it or pass overwrite=True")
        if not (out / "metadata.yaml").is_file():
            raise BagError(f"refusing to overwrite {str(out)!r}: it is not a rosbag2 bag")
        shutil.rmtree(out)
    compute_flow = None
    if flow == "dis":
        from amp_ros.flow import compute_dis_flow as compute_flow

    start = time.perf_counter()
    count = masks = 0
    try:
        with _BagWriter(out, sequence=sequence, source=source, fps=fps) as writer:
            prev: np.ndarray | None = None
            shape: tuple[int, ...] | None = None
            bar = tqdm(frames, total=total, desc=sequence, unit="frame", disable=not progress)
            for frame in bar:
                _check_frame(frame, shape)
                shape = frame.rgb.shape
                stamp = frame_stamp_ns(count, fps)
                if image_format == "raw":
                    writer.image(IMAGE_TOPIC, stamp, frame.rgb, "rgb8")
                else:
                    writer.compressed(IMAGE_TOPIC + COMPRESSED_SUFFIX, stamp, frame.rgb, image_format)
                writer.string(NAME_TOPIC, stamp, frame.name)
                if compute_flow is not None:
                    if prev is None:
                        field = np.zeros((*shape[:2], 2), np.float32)
                    else:
                        field = compute_flow(prev, frame.rgb)
                    writer.image(FLOW_TOPIC, stamp, field, "32FC2")
                    prev = frame.rgb
                if frame.gt is not None:
                    gt = np.where(frame.gt > 0, 255, 0).astype(np.uint8)
                    writer.image(GT_TOPIC, stamp, gt, "mono8")
                    masks += 1
                count += 1
            if count == 0:
                raise DatasetError(f"sequence {sequence!r} has no frames")
    except WriterError as err:
        shutil.rmtree(out, ignore_errors=True)
        raise BagError(f"cannot write bag {str(out)!r}: {err}") from err
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    return WrittenBag(out, sequence, count, masks, flow != "none", time.perf_counter() - start)


# ---------------------------------------------------------------------------------------------
# DAVIS and FBMS-59, read by amp_ros.datasets


def _sequence_frames(sequence: VideoSequence) -> Iterator[SourceFrame]:
    """Every frame of ``sequence`` with its ground truth (mono8 0/255) where it has one."""
    gt_index = {frame: k for k, frame in enumerate(sequence.gt_frames)}
    for index, path in enumerate(sequence.frames):
        k = gt_index.get(index)
        gt = np.where(sequence.read_gt(k), 255, 0).astype(np.uint8) if k is not None else None
        yield SourceFrame(path.stem, read_frame(path), gt)


def _dataset_to_bag(
    dataset: str,
    root: str | Path,
    sequence: str,
    out: str | Path,
    *,
    fps: float,
    flow: str,
    progress: bool,
    overwrite: bool,
    image_format: str = "raw",
) -> WrittenBag:
    video = load_sequence(dataset, root, sequence)
    return write_bag(
        out,
        _sequence_frames(video),
        sequence=sequence,
        source=dataset,
        fps=fps,
        flow=flow,
        total=len(video.frames),
        progress=progress,
        overwrite=overwrite,
        image_format=image_format,
    )


def davis_to_bag(
    root: str | Path,
    sequence: str,
    out: str | Path,
    *,
    fps: float = DEFAULT_FPS,
    flow: str = "none",
    progress: bool = False,
    overwrite: bool = False,
    image_format: str = "raw",
) -> WrittenBag:
    """Convert one DAVIS sequence (frames and ground-truth masks) into a bag at ``out``."""
    return _dataset_to_bag("davis", root, sequence, out, fps=fps, flow=flow, progress=progress,
                           overwrite=overwrite, image_format=image_format)  # fmt: skip


def fbms_to_bag(
    root: str | Path,
    sequence: str,
    out: str | Path,
    *,
    fps: float = DEFAULT_FPS,
    flow: str = "none",
    progress: bool = False,
    overwrite: bool = False,
    image_format: str = "raw",
) -> WrittenBag:
    """Convert one FBMS-59 sequence into a bag; all objects of the sparse masks are foreground.

    ``root`` is a set folder or the FBMS-59 folder holding Trainingset/ and Testset/.
    """
    return _dataset_to_bag("fbms", root, sequence, out, fps=fps, flow=flow, progress=progress,
                           overwrite=overwrite, image_format=image_format)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Users' recordings: a video file or a folder of images


def _resized(rgb: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    if size is None or (rgb.shape[1], rgb.shape[0]) == size:
        return rgb
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def _video_frames(path: Path, max_frames: int | None) -> tuple[Iterator[SourceFrame], float, int]:
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise DatasetError(f"cannot open video {str(path)!r} (not a video OpenCV can decode?)")
    native_fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    if max_frames is not None:
        count = min(count, max_frames) if count > 0 else max_frames

    def frames() -> Iterator[SourceFrame]:
        try:
            index = 0
            while max_frames is None or index < max_frames:
                ok, bgr = capture.read()
                if not ok:
                    break
                yield SourceFrame(f"{index:05d}", cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
                index += 1
        finally:
            capture.release()

    return frames(), native_fps, count


def video_to_bag(
    source: str | Path,
    out: str | Path,
    *,
    fps: float | None = None,
    max_frames: int | None = None,
    resize: tuple[int, int] | None = None,
    flow: str = "none",
    progress: bool = False,
    overwrite: bool = False,
    image_format: str = "raw",
) -> WrittenBag:
    """Convert a video file or an image folder into a bag (no ground truth).

    Frame names are the image file stems, or NNNNN for a video; ``fps`` defaults to the video's
    own rate (24 for a folder); ``resize`` is (width, height).
    """
    source = Path(source)
    if max_frames is not None and max_frames <= 0:
        raise ValueError(f"max_frames must be positive, got {max_frames}")
    if resize is not None and (len(resize) != 2 or min(resize) <= 0):
        raise ValueError(f"resize must be (width, height) with positive sizes, got {resize}")
    if source.is_dir():
        files = image_files(source)[:max_frames]
        if not files:
            raise DatasetError(
                f"folder {str(source)!r} has no images ({', '.join(IMAGE_SUFFIXES)})"
            )
        frames: Iterator[SourceFrame] = (SourceFrame(p.stem, read_frame(p)) for p in files)
        native_fps, total = 0.0, len(files)
    elif source.is_file():
        frames, native_fps, total = _video_frames(source, max_frames)
    else:
        raise DatasetError(f"input {str(source)!r} does not exist")
    rate = fps if fps is not None else (native_fps if native_fps > 0 else DEFAULT_FPS)
    resized = (SourceFrame(f.name, _resized(f.rgb, resize)) for f in frames)
    sequence = source.stem if source.is_file() else source.name
    return write_bag(
        out,
        resized,
        sequence=sequence,
        source="video",
        fps=rate,
        flow=flow,
        total=total or None,
        progress=progress,
        overwrite=overwrite,
        image_format=image_format,
    )
