"""Replay a bag into the live ROS 2 graph with rclpy and collect the segmentation node's masks.

Protocol with the segmentation node (``amp_vos``):

* frames go out on ``/amp_vos/image`` (sensor_msgs/Image rgb8; with ``transport="compressed"``
  on ``/amp_vos/image/compressed`` as sensor_msgs/CompressedImage, lossless PNG as
  image_transport's compressed plugin writes it) and, when the bag has flow, the
  flow of the same frame on ``/amp_vos/flow`` (32FC2) just *before* the image; both keep the
  bag's ``header.stamp`` (frame_id "camera");
* a bag's frames may be raw or compressed (:class:`amp_ros.bag.read.FrameBag` decodes them);
* the node answers on ``/amp_vos/mask`` (mono8 0/255) with the input frame's header copied, which
  is how a mask is matched back to its frame;
* publishers are reliable, keep-last 10, volatile (they match reliable and best-effort
  subscribers); the mask subscription is reliable, keep-last 10, so the node must publish masks
  reliable (the ROS default).

Lockstep mode sends a frame only after the previous frame's mask came back (deterministic
scoring); rate mode sends frames at their bag times scaled by ``rate`` (a slow node drops frames,
as it would live). Set ``FASTDDS_DEFAULT_PROFILES_FILE`` (see
:mod:`amp_ros.ros.dds_env`) before the first ``rclpy.init`` of the process: 480×854 frames need
its 16 MB shared memory. Masks are written in the results layout of
:mod:`amp_ros.datasets.results`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from rclpy.context import Context
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header
from tqdm import tqdm

from amp_ros.bag.read import (
    COMPRESSED_SUFFIX,
    FRAME_ID,
    IMAGE_TYPE,
    NAME_TOPIC,
    SEQUENCE_KEY,
    SOURCE_KEY,
    STRING_TYPE,
    BagError,
    BagFrame,
    FrameBag,
    typestore,
)
from amp_ros.datasets.results import result_path, write_mask
from amp_ros.errors import InputError
from amp_ros.image_codec import image_to_array, split_stamp, stamp_ns
from amp_ros.ros.messages import image_msg

if TYPE_CHECKING:
    from rclpy.node import Node

IMAGE_OUT_TOPIC = "/amp_vos/image"
FLOW_OUT_TOPIC = "/amp_vos/flow"
MASK_IN_TOPIC = "/amp_vos/mask"
TRANSPORTS = ("raw", "compressed")

QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=10,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)
GRAPH_SETTLE_S = 0.5  # after the graph matched, before the first frame (wait_for_graph)


class ReplayError(BagError):
    """Replaying a bag failed: no subscriber, incompatible QoS, bad mask."""


class ReplayTimeoutError(ReplayError, TimeoutError):
    """No mask came back for a frame within the timeout (lockstep)."""


@dataclass(frozen=True)
class FrameResult:
    """One sent frame: its name, stamp and mask latency in seconds (None: no mask came back)."""

    name: str
    stamp_ns: int
    latency_s: float | None


@dataclass
class ReplayStats:
    """What a replay sent and received."""

    sequence: str
    frames: list[FrameResult] = field(default_factory=list)
    wall_s: float = 0.0
    unmatched_masks: int = 0

    @property
    def frames_sent(self) -> int:
        """Frames published."""
        return len(self.frames)

    @property
    def masks_received(self) -> int:
        """Frames whose mask came back."""
        return sum(f.latency_s is not None for f in self.frames)

    @property
    def latencies_s(self) -> list[float]:
        """Send-to-mask latencies of the answered frames, in send order."""
        return [f.latency_s for f in self.frames if f.latency_s is not None]

    @property
    def missing(self) -> list[str]:
        """Names of the frames without a mask."""
        return [f.name for f in self.frames if f.latency_s is None]

    def summary(self) -> str:
        """A one-line report."""
        text = f"{self.sequence}: {self.masks_received}/{self.frames_sent} masks"
        if self.latencies_s:
            lat = np.asarray(self.latencies_s) * 1000
            text += (
                f", latency mean {lat.mean():.1f} ms, median {np.median(lat):.1f} ms, "
                f"max {lat.max():.1f} ms"
            )
        return text + f", {self.wall_s:.1f} s"


class _Recorder:
    """Writes received masks (and their frame names) into a new MCAP bag."""

    def __init__(self, path: Path, sequence: str, mask_topic: str) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer

        self._store = typestore()
        self._writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
        self._writer.set_custom_data(SEQUENCE_KEY, sequence)
        self._writer.set_custom_data(SOURCE_KEY, "replay")
        self._writer.open()
        self._masks = self._writer.add_connection(mask_topic, IMAGE_TYPE, typestore=self._store)
        self._names = self._writer.add_connection(NAME_TOPIC, STRING_TYPE, typestore=self._store)

    def write(self, msg: Image, stamp: int, name: str) -> None:
        self._writer.write(self._masks, stamp, serialize_message(msg))
        text = self._store.types[STRING_TYPE](data=name)
        self._writer.write(self._names, stamp, self._store.serialize_cdr(text, STRING_TYPE))

    def close(self) -> None:
        self._writer.close()


class _Replayer:
    """The replay node's state: publishers, mask subscription, what was sent and received."""

    def __init__(
        self,
        context: Context,
        *,
        sequence: str,
        image_topic: str,
        flow_topic: str,
        mask_topic: str,
        results_dir: Path | None,
        recorder: _Recorder | None,
        on_mask: Callable[[str, int, np.ndarray], None] | None,
        extra_nodes: Sequence[Node],
        transport: str = "raw",
    ) -> None:
        self.node = rclpy.create_node("amp_bag_replay", context=context)
        self.compressed = transport == "compressed"
        if self.compressed:
            image_topic += COMPRESSED_SUFFIX
            self.image_pub = self.node.create_publisher(CompressedImage, image_topic, QOS)
        else:
            self.image_pub = self.node.create_publisher(Image, image_topic, QOS)
        self.flow_pub = self.node.create_publisher(Image, flow_topic, QOS)
        events = SubscriptionEventCallbacks(incompatible_qos=self._on_incompatible_qos)
        self.mask_sub = self.node.create_subscription(
            Image, mask_topic, self._on_mask, QOS, event_callbacks=events
        )
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.extra_nodes = list(extra_nodes)
        for node in self.extra_nodes:
            self.executor.add_node(node)
        self.topics = (image_topic, flow_topic, mask_topic)
        self.sequence = sequence
        self.results_dir = results_dir
        if self.results_dir is not None:
            (self.results_dir / sequence).mkdir(parents=True, exist_ok=True)
        self.recorder = recorder
        self.on_mask = on_mask
        self.sent: dict[int, tuple[str, float]] = {}  # stamp -> (name, send time)
        self.received: dict[int, float] = {}  # stamp -> receive time
        self.unmatched = 0
        self.error: ReplayError | None = None

    def close(self) -> None:
        for node in self.extra_nodes:
            self.executor.remove_node(node)
        self.executor.shutdown()
        self.node.destroy_node()

    def _on_incompatible_qos(self, info: Any) -> None:
        self.error = ReplayError(
            f"the publisher of {self.topics[2]!r} has QoS incompatible with this reliable "
            f"subscription (policy {info.last_policy_kind}); publish masks reliable"
        )

    def _on_mask(self, msg: Image) -> None:
        now = time.monotonic()
        stamp = stamp_ns(msg.header)
        if stamp not in self.sent or stamp in self.received:
            self.unmatched += stamp not in self.sent
            return
        mask = image_to_array(msg)
        if mask.ndim != 2 or mask.dtype != np.uint8:
            raise InputError(
                f"mask on {self.topics[2]!r} must be mono8, got encoding {msg.encoding!r}"
            )
        self.received[stamp] = now
        name = self.sent[stamp][0]
        if self.results_dir is not None:
            path = result_path(self.results_dir, self.sequence, name)
            try:
                write_mask(path, mask)
            except OSError as err:
                raise ReplayError(f"cannot write mask {str(path)!r}: {err}") from err
        if self.recorder is not None:
            self.recorder.write(msg, stamp, name)
        if self.on_mask is not None:
            self.on_mask(name, stamp, mask)

    def spin_for(self, seconds: float, until: Callable[[], bool] = lambda: False) -> bool:
        """Process callbacks for up to ``seconds`` or until ``until()``; returns ``until()``."""
        deadline = time.monotonic() + seconds
        while not until():
            if self.error is not None:
                raise self.error
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.executor.spin_once(timeout_sec=min(remaining, 0.05))
        return True

    def wait_for_graph(self, timeout: float, *, flow: bool, mask: bool) -> None:
        """Wait until the node subscribes to the frames (and publishes masks, if ``mask``)."""
        image_topic, flow_topic, mask_topic = self.topics
        domain = os.environ.get("ROS_DOMAIN_ID", "0")
        if not self.spin_for(timeout, lambda: self.image_pub.get_subscription_count() > 0):
            raise ReplayError(
                f"no subscriber on {image_topic!r} after {timeout:g} s: is the segmentation "
                f"node running, with ROS_DOMAIN_ID={domain} and the same discovery range?"
            )
        if mask and not self.spin_for(timeout, lambda: self.mask_sub.get_publisher_count() > 0):
            raise ReplayError(
                f"nobody publishes {mask_topic!r} (reliable) after {timeout:g} s; "
                f"lockstep needs the node's masks"
            )
        if flow and not self.spin_for(
            min(timeout, 2.0), lambda: self.flow_pub.get_subscription_count() > 0
        ):
            self.node.get_logger().warning(
                f"no subscriber on {flow_topic!r}: sending flow anyway (the node may compute "
                f"its own)"
            )
        # The two ends of a match learn of it at different times; a reliable message sent
        # before the far end has matched is not delivered. Let discovery settle first.
        self.spin_for(GRAPH_SETTLE_S, lambda: False)

    def publish(self, frame: BagFrame, send_flow: bool) -> None:
        """Publish a frame's flow (if any) and then its image, with the bag's stamp."""
        if send_flow and frame.flow is not None:
            self.flow_pub.publish(self._msg(frame.flow, "32FC2", frame.stamp_ns))
        self.sent[frame.stamp_ns] = (frame.name, time.monotonic())
        if self.compressed:
            self.image_pub.publish(self._compressed(frame.rgb, frame.stamp_ns))
        else:
            self.image_pub.publish(self._msg(frame.rgb, "rgb8", frame.stamp_ns))

    @staticmethod
    def _compressed(rgb: np.ndarray, stamp: int) -> CompressedImage:
        """The frame as image_transport's compressed plugin sends it: PNG of the BGR pixels."""
        ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                                [cv2.IMWRITE_PNG_COMPRESSION, 1])  # fmt: skip
        if not ok:
            raise ReplayError(f"OpenCV could not encode a {rgb.shape} frame as png")
        sec, nanosec = split_stamp(stamp)
        header = Header(stamp=Time(sec=sec, nanosec=nanosec), frame_id=FRAME_ID)
        msg = CompressedImage(header=header, format="rgb8; png compressed bgr8")
        msg.data = data.tobytes()
        return msg

    @staticmethod
    def _msg(array: np.ndarray, encoding: str, stamp: int) -> Image:
        return image_msg(array, encoding, stamp_ns=stamp, frame_id=FRAME_ID)

    def results(self) -> list[FrameResult]:
        return [
            FrameResult(
                name,
                stamp,
                self.received[stamp] - sent_at if stamp in self.received else None,
            )
            for stamp, (name, sent_at) in self.sent.items()
        ]


def replay_bag(
    bag: str | Path,
    *,
    lockstep: bool = False,
    rate: float = 1.0,
    image_topic: str = IMAGE_OUT_TOPIC,
    flow_topic: str = FLOW_OUT_TOPIC,
    mask_topic: str = MASK_IN_TOPIC,
    send_flow: bool = True,
    results_dir: str | Path | None = None,
    record: str | Path | None = None,
    timeout: float = 30.0,
    connect_timeout: float = 30.0,
    sequence: str | None = None,
    context: Context | None = None,
    extra_nodes: Sequence[Node] = (),
    on_mask: Callable[[str, int, np.ndarray], None] | None = None,
    progress: bool = False,
    transport: str = "raw",
) -> ReplayStats:
    """Publish a bag's frames to the segmentation node and collect its masks.

    First waits up to ``connect_timeout`` s for the node to subscribe (ReplayError if not).
    ``lockstep``: send the next frame only once the mask of the previous one came back (each
    within ``timeout`` seconds, else ReplayTimeoutError); otherwise send at bag time / ``rate``.
    Masks go to ``results_dir/<sequence>/<name>.png`` and/or a new bag ``record``, and to
    ``on_mask(name, stamp_ns, mask H×W uint8)``. ``sequence`` defaults to the bag's name.
    ``context``: an initialised rclpy Context to use (default: a private one, shut down after).
    ``extra_nodes``: nodes (e.g. an in-process segmentation node) spun by the replay's executor.
    ``transport``: "raw" (rgb8 Images on ``image_topic``) or "compressed" (lossless PNG
    CompressedImages on ``image_topic``/compressed, for a node subscribed through image_transport).
    """
    if transport not in TRANSPORTS:
        raise ValueError(f"transport must be one of {list(TRANSPORTS)}, got {transport!r}")
    if not lockstep and not rate > 0:
        raise ValueError(f"rate must be positive, got {rate}")
    if not (timeout > 0 and connect_timeout > 0):
        raise ValueError(f"timeouts must be positive, got {timeout} and {connect_timeout}")
    frames_bag = FrameBag(bag)
    own_context = context is None
    recorder: _Recorder | None = None
    replayer: _Replayer | None = None
    try:
        sequence = sequence or frames_bag.sequence
        if record is not None:
            record = Path(record)
            if record.exists():
                raise ReplayError(f"record bag {str(record)!r} exists already")
            recorder = _Recorder(record, sequence, mask_topic)
        if own_context:
            context = Context()
            rclpy.init(context=context)
        elif not context.ok():
            raise ReplayError("the given rclpy context is not initialised (call rclpy.init)")
        replayer = _Replayer(
            context,
            sequence=sequence,
            image_topic=image_topic,
            flow_topic=flow_topic,
            mask_topic=mask_topic,
            results_dir=Path(results_dir) if results_dir is not None else None,
            recorder=recorder,
            on_mask=on_mask,
            extra_nodes=extra_nodes,
            transport=transport,
        )
        has_flow = send_flow and frames_bag.has("flow")
        replayer.wait_for_graph(connect_timeout, flow=has_flow, mask=lockstep)
        stats = ReplayStats(sequence)
        start = time.monotonic()
        frames = frames_bag.frames(flow=has_flow, gt=False)
        bar = tqdm(frames, total=len(frames_bag), desc=sequence, unit="frame", disable=not progress)
        if lockstep:
            _run_lockstep(replayer, bar, has_flow, timeout, mask_topic)
        else:
            _run_rate(replayer, bar, has_flow, rate, timeout)
        stats.wall_s = time.monotonic() - start
        stats.frames = replayer.results()
        stats.unmatched_masks = replayer.unmatched
        return stats
    finally:
        if replayer is not None:
            replayer.close()
        if own_context and context is not None and context.ok():
            rclpy.shutdown(context=context)
        if recorder is not None:
            recorder.close()
        frames_bag.close()


def _run_lockstep(
    replayer: _Replayer, frames: Any, has_flow: bool, timeout: float, mask_topic: str
) -> None:
    for frame in frames:
        replayer.publish(frame, has_flow)
        if not replayer.spin_for(timeout, lambda s=frame.stamp_ns: s in replayer.received):
            sec, nanosec = split_stamp(frame.stamp_ns)
            raise ReplayTimeoutError(
                f"no mask on {mask_topic!r} for frame {frame.name!r} (stamp {sec}.{nanosec:09d})"
                f" within {timeout:g} s; the node must publish a mono8 mask with the input "
                f"frame's header copied"
            )


def _run_rate(
    replayer: _Replayer, frames: Any, has_flow: bool, rate: float, timeout: float
) -> None:
    start: float | None = None
    first_stamp = 0
    for frame in frames:
        if start is None:
            start, first_stamp = time.monotonic(), frame.stamp_ns
        due = start + (frame.stamp_ns - first_stamp) / 1e9 / rate
        replayer.spin_for(max(0.0, due - time.monotonic()))
        replayer.publish(frame, has_flow)
    # Drain: wait for the outstanding masks while they keep coming.
    while len(replayer.received) < len(replayer.sent):
        latencies = [replayer.received[s] - replayer.sent[s][1] for s in replayer.received]
        quiet = min(timeout, max(2.0, 3 * max(latencies, default=0.0)))
        count = len(replayer.received)
        if not replayer.spin_for(quiet, lambda c=count: len(replayer.received) > c):
            break
