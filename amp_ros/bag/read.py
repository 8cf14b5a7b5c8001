"""Read amp_ros bags (rosbag2, MCAP or sqlite3) frame by frame, without ROS.

A frame is the ``/camera/image_raw`` image (sensor_msgs/Image in any encoding
:func:`amp_ros.image_codec.image_to_rgb` takes, or sensor_msgs/CompressedImage as image_transport's
compressed plugin writes it, e.g. on ``/camera/image_raw/compressed``) plus, matched by
``header.stamp``, its flow
(``/camera/flow``), ground-truth mask (``/ground_truth/mask``) and source frame name
(``/camera/frame_name``). Each of those companions may be missing from the bag or from a frame.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from rosbags.rosbag2 import Reader, ReaderError
from rosbags.typesys import Stores, get_typestore

from amp_ros.errors import AmpError, InputError
from amp_ros.image_codec import decode_compressed, image_to_array, image_to_rgb, stamp_ns

if TYPE_CHECKING:
    from types import TracebackType

    from rosbags.interfaces import Connection
    from rosbags.typesys.store import Typestore

IMAGE_TOPIC = "/camera/image_raw"
FLOW_TOPIC = "/camera/flow"
GT_TOPIC = "/ground_truth/mask"
NAME_TOPIC = "/camera/frame_name"
FRAME_ID = "camera"

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE_TYPE = "sensor_msgs/msg/CompressedImage"
COMPRESSED_SUFFIX = "/compressed"  # image_transport's compressed topic: <image topic>/compressed
STRING_TYPE = "std_msgs/msg/String"

# Bag metadata custom_data keys written by amp_ros.bag.write.
SEQUENCE_KEY = "amp_ros.sequence"
SOURCE_KEY = "amp_ros.source"
FPS_KEY = "amp_ros.fps"

# In bags from elsewhere, a companion (flow, mask, name) logged up to this much later than its
# image still joins it; amp_ros bags log every message of a frame at the frame's stamp.
_MAX_SKEW_NS = 1_000_000_000


class BagError(AmpError):
    """A bag is missing, unreadable, lacks a topic, or cannot be written."""


class BagFrame(NamedTuple):
    """A frame: rgb H×W×3 uint8, flow H×W×2 float32 or None, gt H×W uint8 0/255 or None."""

    stamp_ns: int
    name: str
    rgb: np.ndarray
    flow: np.ndarray | None
    gt: np.ndarray | None


def typestore() -> Typestore:
    """The ROS 2 Kilted message types that amp_ros bags use."""
    return get_typestore(Stores.ROS2_KILTED)


def bag_path(path: str | Path) -> Path:
    """Check that ``path`` is a rosbag2 directory or a single .mcap/.db3 file; raises BagError."""
    path = Path(path)
    if path.is_file() and (path.parent / "metadata.yaml").is_file():
        path = path.parent
    if not path.exists():
        raise BagError(f"bag {str(path)!r} does not exist")
    if path.is_dir() and not (path / "metadata.yaml").is_file():
        raise BagError(
            f"{str(path)!r} is not a rosbag2 bag: expected a directory with metadata.yaml"
        )
    if path.is_file() and path.suffix not in (".mcap", ".db3"):
        raise BagError(
            f"{str(path)!r} is not a rosbag2 bag: expected a bag directory, .mcap or .db3 file"
        )
    return path


def sequence_name(path: str | Path) -> str:
    """The sequence a bag holds: its directory name without a .bag/.mcap/.db3 suffix."""
    name = Path(path).name
    for suffix in (".bag", ".mcap", ".db3"):
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


class FrameBag:
    """An open bag of frames; use as a context manager and iterate :meth:`frames`."""

    def __init__(
        self,
        path: str | Path,
        *,
        image_topic: str = IMAGE_TOPIC,
        flow_topic: str = FLOW_TOPIC,
        gt_topic: str = GT_TOPIC,
        name_topic: str = NAME_TOPIC,
    ) -> None:
        self.path = bag_path(path)
        self._topics = {"flow": flow_topic, "gt": gt_topic, "name": name_topic}
        self._store = typestore()
        self._reader = Reader(self.path)
        try:
            self._reader.open()
        except (ReaderError, OSError, ValueError) as err:
            raise BagError(f"cannot open bag {str(self.path)!r}: {err}") from err
        self._connections: dict[str, list[Connection]] = {}
        for conn in self._reader.connections:
            self._connections.setdefault(conn.topic, []).append(conn)
        if image_topic not in self._connections and image_topic + COMPRESSED_SUFFIX in self._connections:
            image_topic += COMPRESSED_SUFFIX  # a camera recorded through image_transport
        self.image_topic = image_topic
        if image_topic not in self._connections:
            available = sorted(self._connections)
            self.close()
            raise BagError(
                f"bag {str(self.path)!r} has no topic {image_topic!r}; it has {available}"
            )
        expected = {
            image_topic: (IMAGE_TYPE, COMPRESSED_IMAGE_TYPE),
            flow_topic: (IMAGE_TYPE,),
            gt_topic: (IMAGE_TYPE,),
            name_topic: (STRING_TYPE,),
        }
        for topic, msgtypes in expected.items():
            for conn in self._connections.get(topic, []):
                if conn.msgtype not in msgtypes:
                    self.close()
                    raise BagError(
                        f"topic {topic!r} in {str(self.path)!r} has type {conn.msgtype!r}, "
                        f"expected {' or '.join(map(repr, msgtypes))}"
                    )

    def __enter__(self) -> FrameBag:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the bag's files."""
        if self._reader.is_open:
            self._reader.close()

    @property
    def custom_data(self) -> dict[str, str]:
        """The bag's metadata custom_data (sequence, source, fps when written by amp_ros)."""
        metadata = getattr(self._reader.storage, "metadata", None)
        return dict(getattr(metadata, "custom", None) or {})

    @property
    def sequence(self) -> str:
        """The sequence name: the bag directory name (without .bag/.mcap/.db3 suffix)."""
        return sequence_name(self.path)

    @property
    def topics(self) -> dict[str, str]:
        """Topic name -> message type for every topic in the bag."""
        return {topic: conns[0].msgtype for topic, conns in self._connections.items()}

    def count(self, topic: str | None = None) -> int:
        """The number of messages on ``topic`` (default: the image topic)."""
        conns = self._connections.get(topic or self.image_topic, [])
        return sum(conn.msgcount for conn in conns)

    @property
    def compressed(self) -> bool:
        """Whether the frames are sensor_msgs/CompressedImage (decoded to RGB when read)."""
        return any(c.msgtype == COMPRESSED_IMAGE_TYPE for c in self._connections[self.image_topic])

    def __len__(self) -> int:
        return self.count()

    def has(self, kind: str) -> bool:
        """Whether the bag has any ``kind`` messages: "flow", "gt" or "name"."""
        return self.count(self._topics[kind]) > 0

    def frames(self, *, flow: bool = True, gt: bool = True) -> Iterator[BagFrame]:
        """Yield the frames in order; skip decoding flow or gt with ``flow=False``/``gt=False``."""
        wanted = {"name": True, "flow": flow, "gt": gt}
        kinds = {self._topics[k]: k for k, on in wanted.items() if on and self.has(k)}
        conns = list(self._connections[self.image_topic])
        for topic in kinds:
            conns += self._connections[topic]
        skew = 0 if SOURCE_KEY in self.custom_data else _MAX_SKEW_NS
        latest: dict[str, int] = {kind: -1 for kind in kinds.values()}
        pending: deque[tuple[int, int, Any]] = deque()  # (stamp, log time, image msg)
        extras: dict[int, dict[str, Any]] = {}
        index = 0

        def ready(stamp: int, log_time: int, now: int) -> bool:
            got = extras.get(stamp, {})
            return all(
                kind in got or latest[kind] > stamp or now > log_time + skew for kind in latest
            )

        def emit() -> BagFrame:
            nonlocal index
            stamp, _, image = pending.popleft()
            got = extras.pop(stamp, {})
            frame = self._frame(stamp, image, got, index)
            index += 1
            return frame

        try:
            for conn, log_time, raw in self._reader.messages(connections=conns):
                msg = self._store.deserialize_cdr(raw, conn.msgtype)
                if conn.topic == self.image_topic:
                    pending.append((stamp_ns(msg.header), log_time, msg))
                else:
                    kind = kinds[conn.topic]
                    stamp = self._stamp_of(kind, msg, log_time)
                    latest[kind] = max(latest[kind], stamp)
                    extras.setdefault(stamp, {}).setdefault(kind, msg)
                while pending and ready(pending[0][0], pending[0][1], log_time):
                    yield emit()
            while pending:
                yield emit()
        except ReaderError as err:
            raise BagError(f"cannot read bag {str(self.path)!r}: {err}") from err

    @staticmethod
    def _stamp_of(kind: str, msg: Any, log_time: int) -> int:
        # std_msgs/String has no header: a name is matched by its log time, which amp_ros
        # writes equal to the frame's header stamp.
        return log_time if kind == "name" else stamp_ns(msg.header)

    @staticmethod
    def _frame(stamp: int, image: Any, got: dict[str, Any], index: int) -> BagFrame:
        name = str(got["name"].data) if "name" in got else f"{index:05d}"
        rgb = frame_rgb(image, name)
        flow = image_to_array(got["flow"]) if "flow" in got else None
        if flow is not None and (flow.ndim != 3 or flow.shape[2] != 2):
            raise BagError(
                f"flow of frame {name!r} must be 32FC2, got encoding {got['flow'].encoding!r}"
            )
        gt = None
        if "gt" in got:
            gt_pixels = image_to_array(got["gt"])
            if gt_pixels.ndim != 2:
                raise BagError(
                    f"ground truth of frame {name!r} must be mono8, "
                    f"got encoding {got['gt'].encoding!r}"
                )
            gt = np.where(gt_pixels > 0, 255, 0).astype(np.uint8)
        return BagFrame(stamp, name, rgb, flow, gt)


def frame_rgb(image: Any, name: str = "") -> np.ndarray:
    """A bag's frame message as H×W×3 uint8 RGB: a CompressedImage (it has ``format``) is
    decoded, an Image converted; raises BagError naming the frame on bad pixels."""
    try:
        if hasattr(image, "format"):
            return decode_compressed(str(image.format), bytes(image.data))
        return image_to_rgb(image)
    except InputError as err:
        raise BagError(f"image of frame {name!r}: {err}") from err


def read_frames(
    path: str | Path,
    *,
    flow: bool = True,
    gt: bool = True,
    image_topic: str = IMAGE_TOPIC,
) -> Iterator[BagFrame]:
    """Yield (stamp_ns, name, rgb, flow or None, gt or None) for every frame of a bag."""
    with FrameBag(path, image_topic=image_topic) as bag:
        yield from bag.frames(flow=flow, gt=gt)
