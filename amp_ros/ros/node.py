"""The ``amp_vos`` node: camera frames (+ optional flow) in, moving-object masks out.

A thin adapter over :class:`amp_ros.pipeline.Pipeline`, as a managed (lifecycle) node: configure
loads the model and restores the taught classes, activate subscribes to the camera and starts the
worker, deactivate releases the camera, cleanup frees the model. With ``autostart`` (the default)
it configures and activates itself at start. Subscription callbacks only offer the newest
frame/flow pair to a :class:`~amp_ros.latest_frame.LatestFrameWorker`, whose thread segments it
and publishes, so a slow pipeline drops stale frames (counted) instead of building a queue. The
parameters are declared from :class:`~amp_ros.ros.node_config.NodeConfig`.
"""

from __future__ import annotations

import copy
import gc
import os
import signal
import sys
import threading

# Run as the program (``python -m amp_ros.ros.node`` or the ``vos_node`` script): catch SIGINT and
# SIGTERM before the heavy imports below (seconds), so a signal while starting stops the node
# cleanly instead of raising KeyboardInterrupt inside an import. ``main`` takes the flag over.
_EARLY_STOP = threading.Event()
if __name__ == "__main__" or os.path.basename(sys.argv[0] if sys.argv else "") == "vos_node":
    for _signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(_signum, lambda *_: _EARLY_STOP.set())

import re  # noqa: E402  (after the early signal handlers, on purpose)
import time  # noqa: E402
import traceback  # noqa: E402
from collections import deque  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from dataclasses import dataclass, replace  # noqa: E402
from typing import Any  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import rclpy  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue  # noqa: E402
from rcl_interfaces.msg import (  # noqa: E402
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    SetParametersResult,
)
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup  # noqa: E402
from rclpy.exceptions import ParameterException  # noqa: E402
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor  # noqa: E402
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data  # noqa: E402
from rclpy.qos_overriding_options import InvalidQosOverridesError, QoSOverridingOptions  # noqa: E402
from rclpy.signals import SignalHandlerOptions  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from amp_interfaces.srv import Forget, Teach  # noqa: E402
from amp_ros.class_store import STATE_FILE, ClassStore  # noqa: E402
from amp_ros.errors import AmpError, InputError  # noqa: E402
from amp_ros.image_codec import (  # noqa: E402
    decode_compressed,
    image_to_array,
    image_to_rgb,
    split_stamp,
    stamp_ns,
)
from amp_ros.latest_frame import LatestFrameWorker  # noqa: E402
from amp_ros.models import resolve_checkpoint  # noqa: E402
from amp_ros.overlay import render_overlay  # noqa: E402
from amp_ros.pipeline import Pipeline, usable_cores  # noqa: E402
from amp_ros.ros.messages import image_msg  # noqa: E402
from amp_ros.ros.node_config import NODE_NAME, PARAMETERS, NodeConfig, state_dir_of, torch_threads  # noqa: E402
from amp_ros.setting_fields import Setting, build, check  # noqa: E402
from amp_ros.stamp_sync import StampPairer  # noqa: E402

# A frame to process: (header, frame, flow or None, arrival time).
Frame = tuple[Any, np.ndarray, np.ndarray | None, float]

OUTPUTS = ("mask", "labels", "probability", "overlay")
"""The node's image outputs, published on ``~/<name>``."""

SERVICE_NAMES = {"teach": "amp/teach", "forget": "amp/forget", "reset": "amp/reset"}
"""Relative service names: /amp/... for a node in the root namespace, /<ns>/amp/... otherwise."""

STALE_AFTER = 5.0
"""Seconds without a frame on ``~/image`` after which /diagnostics warns that input is stale."""

LOG_EVERY = 5.0
"""Seconds between two log lines of the same kind of repeated problem (rejected input, failed
frame, DIS fallback); each kind is throttled on its own, the skipped ones are counted."""

RECENT = 5.0
"""Seconds for which a dropped frame, rejected input or failed frame keeps /diagnostics at WARN
(drops, rejections) or ERROR (failures)."""

RATE_WINDOW = 5.0
"""Seconds over which the input rate and the processing rate (fps) are measured."""

SLOWER_THAN_INPUT = 0.9
"""/diagnostics warns when fps is below this fraction of the input rate."""


def parameter_descriptor(item: Setting) -> ParameterDescriptor:
    """The ROS parameter descriptor of a setting: description, read-only flag, range or choices."""
    descriptor = ParameterDescriptor(name=item.name, description=item.description, read_only=item.read_only)
    if item.choices is not None:
        descriptor.additional_constraints = "one of: " + ", ".join(item.choices)
    elif item.limits is not None and isinstance(item.default, float):
        low, high = item.limits
        descriptor.floating_point_range = [FloatingPointRange(from_value=float(low), to_value=float(high))]
    elif item.limits is not None and isinstance(item.default, int) and not isinstance(item.default, bool):
        low, high = item.limits
        descriptor.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=1)]
    return descriptor


def _stamp_text(stamp: int) -> str:
    sec, nanosec = split_stamp(stamp)
    return f"{sec}.{nanosec:09d}"


@dataclass(frozen=True)
class KeptFrame:
    """A processed frame kept for teaching by stamp, at the processing size (memory: at most
    the network's input per frame, whatever the camera's resolution)."""

    stamp: int
    small: np.ndarray  # h×w×3 uint8 RGB, as the network saw it
    size: tuple[int, int]  # the frame's H, W (masks come at this size)
    flow: np.ndarray | None  # h×w×2 float32 flow the network was given; None: seen without


def _fit_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A 0/255 mask resized to ``size`` (h, w): pixels at least half covered by the object, or
    every partly covered one when that would lose a small object altogether."""
    if mask.shape == size:
        return mask
    covered = cv2.resize((mask != 0).astype(np.uint8) * 255, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    fitted = covered >= 128
    if not fitted.any():
        fitted = covered > 0
    return fitted.astype(np.uint8) * 255


_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def compressed_dimensions(data: bytes) -> tuple[int, int] | None:
    """(width, height) that a PNG or JPEG declares in its header, read without decoding (so that
    a small file announcing a huge image is refused before anything is allocated); None when the
    header is not one of those or cannot be read."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:2] != b"\xff\xd8":
        return None
    index = 2
    while index + 4 <= len(data):
        if data[index] != 0xFF:
            return None
        marker = data[index + 1]
        if marker == 0xFF:  # fill byte
            index += 1
            continue
        if marker in _JPEG_SOF and index + 9 <= len(data):
            height, width = data[index + 5:index + 7], data[index + 7:index + 9]
            return int.from_bytes(width, "big"), int.from_bytes(height, "big")
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            index += 2
            continue
        index += 2 + int.from_bytes(data[index + 2:index + 4], "big")
    return None


@contextmanager
def _qos_overrides_checked(topic: str) -> Iterator[None]:
    """Creating a publisher/subscription: a bad qos_overrides.* parameter value (rclpy raises a
    RuntimeError or InvalidQosOverridesError) becomes an InputError naming the topic."""
    try:
        yield
    except (RuntimeError, InvalidQosOverridesError) as err:
        raise InputError(f"QoS override of {topic}: {err}") from err


class VosNode(LifecycleNode):
    """Online AMP video object segmentation as a managed ROS 2 node."""

    def __init__(self, **kwargs: object):
        self._closing = False  # set by stop_processing (the node is stopping)
        self._worker: LatestFrameWorker[Frame] | None = None
        super().__init__(NODE_NAME, **kwargs)
        for item in PARAMETERS:
            self.declare_parameter(item.name, item.default, parameter_descriptor(item))
        values = {item.name: self.get_parameter(item.name).value for item in PARAMETERS}
        check(PARAMETERS, values)
        self._config: NodeConfig = build(NodeConfig, values)
        self.add_on_set_parameters_callback(self._on_set_parameters)

        self.pipeline: Pipeline | None = None  # loaded by configure, freed by cleanup
        self._store: ClassStore | None = None
        self._pipeline_lock = threading.Lock()
        self._kept: deque[KeptFrame] = deque(maxlen=max(1, self._config.teach_frames))
        self._pairer: StampPairer[tuple[object, np.ndarray], np.ndarray] = StampPairer(
            int(self._config.slop * 1e9)
        )
        self._last_flow_time = -float("inf")
        # Counters, updated from the input callbacks, the worker and the services: under _stats_lock.
        self._stats_lock = threading.Lock()
        self._stats = {"processed": 0, "rejected": 0, "failed": 0, "flow_fallbacks": 0, "latency": 0.0,
                       "dropped_before": 0}
        self._logged: dict[str, tuple[float, int]] = {}  # kind → (last logged, skipped since)
        self._last_input = time.monotonic()  # the last message on ~/image (start: activation)
        self._seen: dict[str, int] = {}  # counts at the last /diagnostics status
        self._changed: dict[str, float] = {}  # when each count last grew (monotonic)
        self._fps_window: deque[float] = deque()  # publish times (monotonic) within RATE_WINDOW
        self._input_window: deque[float] = deque()  # ~/image arrival times within RATE_WINDOW
        self._flow_source_used = "none"
        self._inputs: list[Any] = []  # camera (and flow) subscriptions while active
        self._outputs: dict[str, Any] = {}  # lifecycle publishers while configured
        self._amp_services: list[Any] = []  # teach/forget/reset while configured
        self._input_group = MutuallyExclusiveCallbackGroup()
        self._service_group = MutuallyExclusiveCallbackGroup()
        self._transition_error: BaseException | None = None
        self._autostarting = False

        self.diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(self._config.diagnostics_period, self.publish_diagnostics)
        if self._config.autostart:
            try:
                self._autostart()
            except BaseException:
                self.destroy_node()
                raise

    @property
    def config(self) -> NodeConfig:
        """The node's current settings."""
        return self._config

    @property
    def state(self) -> str:
        """The lifecycle state's label: unconfigured, inactive, active, finalized (or a transition)."""
        return self._state_machine.current_state[1]

    # --- lifecycle ------------------------------------------------------------------------

    def _autostart(self) -> None:
        """Configure and activate now; the error that failed a transition is raised."""
        self._autostarting = True
        try:
            for name, trigger in (("configure", self.trigger_configure), ("activate", self.trigger_activate)):
                self._transition_error = None
                if trigger() != TransitionCallbackReturn.SUCCESS:
                    error = self._transition_error
                    raise error if error is not None else AmpError(f"{name} failed")
        finally:
            self._autostarting = False

    def _transition(self, name: str, action: Any) -> TransitionCallbackReturn:
        """Run a transition's ``action``; any exception fails the transition (the node stays in
        its previous state, what the action made is undone by it) and is logged: one line for a
        start-up error (bad parameter, missing model), the traceback for anything else. While
        autostarting, the error is raised by :meth:`_autostart` instead of logged."""
        try:
            action()
        except Exception as err:
            self._transition_error = err
            if not self._autostarting:
                if isinstance(err, STARTUP_ERRORS):
                    self.get_logger().error(f"{name} failed: {err}")
                else:
                    self.get_logger().error(f"{name} failed:\n{traceback.format_exc().rstrip()}")
            return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load the model, restore the taught classes, warm the pipeline up (so that the first
        camera frame is served like any other), create the outputs and the services."""
        return self._transition("configure", self._configure)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Enable the outputs, subscribe to the camera (and flow), start the worker."""
        result = super().on_activate(state)  # the lifecycle publishers publish from now on
        if result != TransitionCallbackReturn.SUCCESS:
            return result
        result = self._transition("activate", self._activate)
        if result != TransitionCallbackReturn.SUCCESS:
            super().on_deactivate(state)
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release the camera: unsubscribe, stop the worker (a frame in progress finishes)."""
        result = self._transition("deactivate", self._deactivate)
        super().on_deactivate(state)
        return result

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Remove the outputs and services and free the model."""
        return self._transition("cleanup", self._cleanup)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release everything, from whichever state the node is in."""
        self._closing = True
        self._transition("shutdown", self._deactivate)
        super().on_deactivate(state)
        return self._transition("shutdown", self._cleanup)

    def _configure(self) -> None:
        config = self._config
        try:
            pipeline = self._load_pipeline(config)
            store = ClassStore(state_dir_of(config, self.get_fully_qualified_name()))
            with self._pipeline_lock:
                self.pipeline, self._store = pipeline, store
                self._kept.clear()
            legacy = state_dir_of(config, "") / STATE_FILE  # where amp_ros 0.1 kept every node's
            if not config.state_dir and not store.path.exists() and legacy.exists():
                self.get_logger().warning(
                    f"taught classes in {legacy} (the old shared default) are not used: this node keeps "
                    f"its own in {store.directory}; move the file there, or set state_dir"
                )
            self._restore_taught_classes()
            with self._pipeline_lock:  # torch initialises on its first frames: not on the camera's
                warm_up_s = pipeline.warm_up()
            for name in OUTPUTS:  # a profile each: QoS overrides change the profile they are given
                with _qos_overrides_checked(f"~/{name}"):
                    self._outputs[name] = self.create_lifecycle_publisher(
                        Image, f"~/{name}", QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE),
                        qos_overriding_options=QoSOverridingOptions.with_default_policies(),
                    )
            handlers = {"teach": (Teach, self.on_teach), "forget": (Forget, self.on_forget),
                        "reset": (Trigger, self.on_reset)}
            for key, (kind, handler) in handlers.items():
                self._amp_services.append(
                    self.create_service(kind, SERVICE_NAMES[key], handler, callback_group=self._service_group)
                )
        except BaseException:
            self._cleanup()
            raise
        self.get_logger().info(
            f"configured: checkpoint {pipeline.checkpoint.path}, device {self._device()} "
            f"(network on {pipeline.runtime}), state_dir {store.directory}, "
            f"taught classes {sorted(pipeline.taught_classes)}, warmed up in {warm_up_s:.1f} s"
        )

    def _activate(self) -> None:
        config = self._config
        try:
            with self._stats_lock:
                self._stats["dropped_before"] += self._pairer.dropped
            self._pairer = StampPairer(int(config.slop * 1e9))
            self._last_flow_time = -float("inf")
            self._last_input = time.monotonic()
            self._closing = False
            worker: LatestFrameWorker[Frame] = LatestFrameWorker(self._handle, name="amp_vos_worker")
            self._worker = worker.start()

            def qos() -> QoSProfile:  # a profile each: QoS overrides change the profile they are given
                if config.qos == "sensor_data":
                    return copy.copy(qos_profile_sensor_data)
                return QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)

            overrides = QoSOverridingOptions.with_default_policies()
            image_topic = self.resolve_topic_name("~/image")  # after remapping
            if config.image_transport == "compressed":
                image_topic += "/compressed"  # image_transport's name for the compressed stream
                with _qos_overrides_checked(image_topic):
                    self._inputs.append(self.create_subscription(
                        CompressedImage, image_topic, self.on_compressed, qos(),
                        callback_group=self._input_group, qos_overriding_options=overrides,
                    ))
            else:
                with _qos_overrides_checked(image_topic):
                    self._inputs.append(self.create_subscription(
                        Image, "~/image", self.on_image, qos(),
                        callback_group=self._input_group, qos_overriding_options=overrides,
                    ))
            with _qos_overrides_checked("~/flow"):
                self._inputs.append(self.create_subscription(
                    Image, "~/flow", self.on_flow, qos(), callback_group=self._input_group,
                    qos_overriding_options=overrides,
                ))
        except BaseException:
            self._deactivate()
            raise
        self.get_logger().info(
            f"active: {image_topic} ({config.image_transport}, qos {config.qos}), "
            f"flow_source {config.flow_source}"
        )

    def _deactivate(self) -> None:
        for subscription in self._inputs:
            self.destroy_subscription(subscription)
        self._inputs = []
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.stop(timeout=STOP_TIMEOUT)
            with self._stats_lock:
                self._stats["dropped_before"] += worker.dropped

    def _cleanup(self) -> None:
        for service in self._amp_services:
            self.destroy_service(service)
        self._amp_services = []
        for publisher in self._outputs.values():
            self.destroy_lifecycle_publisher(publisher)
        self._outputs = {}
        with self._pipeline_lock:  # a service call in flight finishes first
            freed, self.pipeline, self._store = self.pipeline, None, None
            self._kept.clear()
        if freed is not None:  # give the memory back (on a GPU, also torch's cached blocks)
            del freed
            gc.collect()
            if self._config.device != "cpu":
                import torch

                if torch.cuda.is_available():
                    torch.cuda.empty_cache()

    # --- set-up -------------------------------------------------------------------------

    def _device(self) -> str:
        import torch

        device = self._config.device
        if device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        return device

    def _load_pipeline(self, config: NodeConfig) -> Pipeline:
        import torch

        threads = torch_threads(config.threads, usable_cores(), os.environ.get("OMP_NUM_THREADS"))
        if threads is not None:
            torch.set_num_threads(threads)
        path = resolve_checkpoint(config.checkpoint)
        pipeline = Pipeline.from_checkpoint(path, device=self._device(), config=config.pipeline)
        if config.max_side:
            checkpoint = pipeline.checkpoint
            checkpoint.input = replace(checkpoint.input, max_side=config.max_side)
        return pipeline

    def _restore_taught_classes(self) -> None:
        """Restore the saved taught classes. A file that cannot be read is set aside by the store;
        a readable one that does not fit this network (another checkpoint) is set aside here, so
        that the next teach does not overwrite what was taught with the other network."""
        try:
            saved = self._store.load()
        except AmpError as err:
            self.get_logger().error(f"taught classes not restored: {err}")
            return
        if saved is None:
            return
        try:
            self.pipeline.restore_taught(saved)
        except AmpError as err:
            path = self._store.path
            aside = path.with_name(f"{path.name}.not-restored-{time.strftime('%Y%m%d-%H%M%S')}")
            n = 0
            while aside.exists():
                n += 1
                aside = aside.with_name(f"{path.name}.not-restored-{time.strftime('%Y%m%d-%H%M%S')}-{n}")
            try:
                path.rename(aside)
                where = f"; moved it to {aside}"
            except OSError as move_err:
                where = f"; could not move it aside ({move_err}): the next teach overwrites it"
            self.get_logger().error(f"taught classes not restored: {err}{where}")

    def _on_set_parameters(self, parameters: list) -> SetParametersResult:
        names = {item.name for item in PARAMETERS}
        values = {item.name: self.get_parameter(item.name).value for item in PARAMETERS}
        values.update({p.name: p.value for p in parameters if p.name in names})
        try:
            check(PARAMETERS, values)
            config = build(NodeConfig, values)
        except (KeyError, ValueError, TypeError) as err:
            return SetParametersResult(successful=False, reason=str(err))
        with self._pipeline_lock:
            self._config = config
            if self.pipeline is not None:
                self.pipeline.config = config.pipeline
            self._pairer.slop_ns = int(config.slop * 1e9)
        return SetParametersResult(successful=True)

    # --- inputs ---------------------------------------------------------------------------

    def on_image(self, msg: Image) -> None:
        """Decode a camera frame and offer it for processing (alone or paired with flow)."""
        self._receive(msg.header, lambda: self._decode_raw(msg))

    def _decode_raw(self, msg: Image) -> np.ndarray:
        self._check_size("frame", msg)
        return image_to_rgb(msg)

    def on_compressed(self, msg: CompressedImage) -> None:
        """Decode a sensor_msgs/CompressedImage frame (image_transport's compressed stream)."""
        self._receive(msg.header, lambda: self._decode_compressed(msg))

    def _decode_compressed(self, msg: CompressedImage) -> np.ndarray:
        limit = self._config.max_image_pixels
        data = bytes(msg.data)
        if len(data) > 4 * limit + 65536:  # more than any codec needs for that many pixels
            raise InputError(
                f"compressed frame of {len(data)} bytes is too large for max_image_pixels {limit}"
            )
        declared = compressed_dimensions(data)
        if declared is not None and declared[0] * declared[1] > limit:
            raise InputError(
                f"frame {declared[0]}×{declared[1]} (its {msg.format} header) exceeds "
                f"max_image_pixels {limit}"
            )
        frame = decode_compressed(msg.format, data)
        if frame.shape[0] * frame.shape[1] > limit:
            raise InputError(f"frame {frame.shape[1]}×{frame.shape[0]} exceeds max_image_pixels {limit}")
        return frame

    def _receive(self, header: Any, decode: Callable[[], np.ndarray]) -> None:
        """A frame arrived: decode it (an InputError rejects it) and offer it for processing. Any
        other exception is counted and logged: raised, it would end spin()."""
        self._arrived()
        try:
            try:
                frame = decode()
            except InputError as err:
                self._reject(f"frame rejected: {err}")
                return
            self._take_frame(header, frame)
        except Exception as err:
            self._frame_failed(err)

    def _arrived(self) -> None:
        now = time.monotonic()
        self._last_input = now
        with self._stats_lock:
            self._input_window.append(now)
            while self._input_window and now - self._input_window[0] > RATE_WINDOW:
                self._input_window.popleft()

    def _take_frame(self, header: Any, frame: np.ndarray) -> None:
        """Offer a decoded frame: paired with its flow when flow comes from ~/flow, else alone."""
        if self._use_flow_topic():
            pair = self._pairer.add_first(stamp_ns(header), (header, frame))
            if pair is not None:
                _, (header, frame), flow = pair
                self._offer_pair(header, frame, flow)
        else:
            self._offer(header, frame, None)

    def on_flow(self, msg: Image) -> None:
        """Decode a 32FC2 flow field and pair it with its frame."""
        try:
            self._on_flow(msg)
        except Exception as err:  # an exception would end spin(): count, log, go on
            self._frame_failed(err)

    def _on_flow(self, msg: Image) -> None:
        if self._config.flow_source == "dis":
            return
        stamp = stamp_ns(msg.header)
        try:
            if msg.encoding != "32FC2":
                raise InputError(f"flow encoding must be 32FC2, got {msg.encoding!r}")
            self._check_size("flow", msg)
            flow = image_to_array(msg)
            if not np.isfinite(flow).all():
                raise InputError("flow contains NaN or inf")
        except InputError as err:
            self._reject(f"flow rejected: {err}")
            self._fall_back(stamp + self._pairer.slop_ns + 1, "its flow was rejected")
            return
        # Only decodable flow counts as "the topic is alive": a topic sending garbage must not
        # keep auto mode from falling back to DIS.
        self._last_flow_time = time.monotonic()
        pair = self._pairer.add_second(stamp, flow)
        if pair is not None:
            _, (header, frame), flow = pair
            self._offer_pair(header, frame, flow)
        else:  # flow arrives in stamp order: frames older than this one will get none
            self._fall_back(stamp - self._pairer.slop_ns, "no flow within slop of its stamp")

    def _fall_back(self, before_ns: int, reason: str) -> None:
        """auto mode: the newest frame waiting for flow stamped before ``before_ns`` can no longer
        get usable flow; process it with DIS rather than lose its mask (older ones are dropped)."""
        if self._config.flow_source != "auto":
            return
        waiting = self._pairer.take_first_before(before_ns)
        if waiting is not None:
            _, (header, frame) = waiting
            self._dis_instead(reason)
            self._offer(header, frame, None)

    def _offer_pair(self, header: object, frame: np.ndarray, flow: np.ndarray) -> None:
        """Offer a frame with its flow; in auto mode, flow of another size than the frame is
        replaced by DIS for this frame (flow_source topic: the pipeline rejects the pair)."""
        if flow.shape[:2] != frame.shape[:2] and self._config.flow_source == "auto":
            self._dis_instead(
                f"flow {flow.shape[1]}×{flow.shape[0]} does not match the frame "
                f"{frame.shape[1]}×{frame.shape[0]}"
            )
            flow = None
        self._offer(header, frame, flow)

    def _dis_instead(self, reason: str) -> None:
        self._count("flow_fallbacks")
        self._log_throttled(f"DIS flow for a frame instead of ~/flow: {reason}")

    def _use_flow_topic(self) -> bool:
        source = self._config.flow_source
        if source == "auto":
            return time.monotonic() - self._last_flow_time < self._config.flow_timeout
        return source == "topic"

    def _check_size(self, what: str, msg: Image) -> None:
        """InputError if ``msg`` has more pixels than max_image_pixels (checked before decoding,
        so that no message can make the node allocate more than that)."""
        if msg.height * msg.width > self._config.max_image_pixels:
            raise InputError(
                f"{what} {msg.width}×{msg.height} exceeds max_image_pixels {self._config.max_image_pixels}"
            )

    def _reject(self, message: str) -> None:
        self._count("rejected")
        self._log_throttled(message)

    def _count(self, key: str, amount: int = 1) -> None:
        with self._stats_lock:
            self._stats[key] += amount

    def _log_throttled(self, message: str, kind: str | None = None, error: bool = False) -> None:
        """Log ``message`` unless one of the same kind was logged less than :data:`LOG_EVERY` s
        ago; the kind defaults to the message's first line with numbers masked (so "frame
        640×480 exceeds ..." and "frame 800×600 exceeds ..." are one kind, a bad encoding
        another). The first line after a quiet spell says how many were not logged."""
        if kind is None:
            kind = re.sub(r"\d+", "#", message.split("\n", 1)[0])
        now = time.monotonic()
        with self._stats_lock:
            last, skipped = self._logged.get(kind, (-float("inf"), 0))
            if now - last < LOG_EVERY:
                self._logged[kind] = (last, skipped + 1)
                return
            self._logged[kind] = (now, 0)
        if skipped:
            first, _, rest = message.partition("\n")
            message = f"{first} ({skipped} more like it not logged)" + (f"\n{rest}" if rest else "")
        logger = self.get_logger()
        (logger.error if error else logger.warning)(message)

    def _offer(self, header: object, frame: np.ndarray, flow: np.ndarray | None) -> None:
        worker = self._worker
        if worker is not None:  # None: deactivated while this callback ran
            worker.offer((header, frame, flow, time.monotonic()))

    # --- processing (on the worker thread) ------------------------------------------------

    def _handle(self, item: Frame) -> None:
        try:
            self._process(*item)
        except AmpError as err:
            self._reject(f"frame skipped: {err}")
        except Exception as err:  # keep serving; counted, the traceback goes to the log
            if self._closing or self._worker is None:  # stopping or deactivated: not a failure
                self.get_logger().debug(f"frame abandoned while stopping: {err!r}")
                return
            self._frame_failed(err)

    def _frame_failed(self, err: Exception) -> None:
        """Count a frame that failed unexpectedly; log it with its traceback (throttled: the
        count is on /diagnostics, which reports ERROR while frames fail)."""
        self._count("failed")
        trace = "".join(traceback.format_exception(err)).rstrip()
        self._log_throttled(f"frame failed: {err!r}\n{trace}", kind=f"failed: {type(err).__name__}",
                            error=True)

    def _process(
        self, header: object, frame: np.ndarray, flow: np.ndarray | None, arrival: float
    ) -> None:
        outputs = self._outputs
        with self._pipeline_lock:
            pipeline = self.pipeline
            if pipeline is None or not outputs:  # cleaned up meanwhile
                return
            # Taught classes cost time every frame: only while someone listens for their labels.
            wanted = any(outputs[name].get_subscription_count() for name in ("labels", "overlay"))
            result = pipeline.step(frame, flow, labels=wanted)
            if self._config.teach_frames:
                self._kept.append(
                    KeptFrame(stamp_ns(header), result.small_frame, frame.shape[:2], result.small_flow))
        self._flow_source_used = result.flow_source
        if result.taught_changed:  # a teach completed on this frame's motion: keep it
            self._persist()
        self._publish(outputs["mask"], header, result.mask, "mono8")
        if result.labels is not None and outputs["labels"].get_subscription_count():
            self._publish(outputs["labels"], header, result.labels, "mono8")
        if outputs["probability"].get_subscription_count():
            self._publish(outputs["probability"], header, result.probability, "32FC1")
        if outputs["overlay"].get_subscription_count():
            overlay = render_overlay(frame, result.mask, result.labels)  # labels: None if none taught
            self._publish(outputs["overlay"], header, overlay, "rgb8")
        now = time.monotonic()
        with self._stats_lock:
            self._stats["processed"] += 1
            self._stats["latency"] = now - arrival  # arrival to publish
            self._fps_window.append(now)
            while self._fps_window and now - self._fps_window[0] > RATE_WINDOW:
                self._fps_window.popleft()
        self.get_logger().debug(
            "timings " + " ".join(f"{k}={v * 1000:.1f}ms" for k, v in result.timings.items())
        )

    def _publish(self, publisher: object, header: object, array: np.ndarray, encoding: str) -> None:
        publisher.publish(image_msg(array, encoding, header=header))

    # --- services -------------------------------------------------------------------------

    def _answer(self, what: str, response: Any, handle: Any) -> Any:
        """Run a service call's ``handle()``; any exception becomes a reply with success=false
        and a message (an exception would end spin() and the node): an AmpError is a refusal
        (warning), anything else a failure (error, logged once with its traceback)."""
        try:
            return handle()
        except AmpError as err:
            response.success, response.message = False, str(err)
            self.get_logger().warning(f"{what} refused: {err}")
        except Exception as err:
            response.success = False
            response.message = f"{what} failed: {type(err).__name__}: {err}"
            self.get_logger().error(f"{what} failed:\n{traceback.format_exc().rstrip()}")
        if hasattr(response, "class_id"):
            response.class_id = -1
        return response

    def _loaded(self) -> Pipeline:
        """The pipeline (call under the pipeline lock); InputError when the node is not configured."""
        if self.pipeline is None:
            raise InputError(f"the node is {self.state}: configure it first")
        return self.pipeline

    def on_teach(self, request: Teach.Request, response: Teach.Response) -> Teach.Response:
        """Imprint (or adapt) a class from one labelled frame, and persist the taught classes.

        The frame is the request's image, or (empty image) the kept processed frame whose stamp
        equals the mask's (stamp 0: the newest); the reply carries the frame's stamp."""
        response.class_id = -1
        return self._answer("teach", response, lambda: self._teach(request, response))

    def _teach(self, request: Teach.Request, response: Teach.Response) -> Teach.Response:
        label, image = request.label, request.image
        given = bool(image.height or image.width)  # 0×0 = no image (a kept frame); 0×N is not that
        if given:
            if not (image.height and image.width):
                raise InputError(
                    f"image is {image.width}×{image.height}: give both sizes, or 0×0 for a kept frame"
                )
            self._check_size("image", image)
        self._check_size("mask", request.mask)
        if request.mask.encoding not in ("mono8", "8UC1"):
            raise InputError(f"mask encoding must be mono8, got {request.mask.encoding!r}")
        if given:
            frame = image_to_rgb(image)
            mask = image_to_array(request.mask)
            with self._pipeline_lock:  # the pipeline checks the mask against its frame
                taught = self._loaded().teach(label, mask, frame)
            stamp = stamp_ns(image.header)
        else:
            mask = image_to_array(request.mask)
            with self._pipeline_lock:
                pipeline = self._loaded()
                kept = self._kept_frame(stamp_ns(request.mask.header))
                if mask.shape != kept.size:
                    raise InputError(
                        f"mask has shape {mask.shape}, the frame stamped {_stamp_text(kept.stamp)} is "
                        f"{kept.size}"
                    )
                # taught on the frame as the network saw it, its motion included
                taught = pipeline.teach(label, _fit_mask(mask, kept.small.shape[:2]), kept.small, kept.flow)
            stamp = kept.stamp
        response.stamp.sec, response.stamp.nanosec = split_stamp(stamp)
        verb = "imprinted" if taught.imprinted else "adapted"
        response.success, response.class_id = True, taught.class_id
        response.message = (f"{verb} class {taught.label!r} (id {taught.class_id}) on the frame stamped "
                             f"{_stamp_text(stamp)}" + self._persist())
        self.get_logger().info(response.message)
        return response

    def _kept_frame(self, stamp: int) -> KeptFrame:
        """The kept frame stamped ``stamp`` (0: the newest; the newest of equal stamps);
        InputError saying which stamps are kept when there is none."""
        if not self._config.teach_frames:
            raise InputError("no frames are kept (teach_frames is 0): give the image with the mask")
        if not self._kept:
            raise InputError("no frame processed yet: give the image with the mask")
        if stamp == 0:
            return self._kept[-1]
        for kept in reversed(self._kept):
            if kept.stamp == stamp:
                return kept
        raise InputError(
            f"no kept frame is stamped {_stamp_text(stamp)} (the mask's header.stamp); the node keeps "
            f"the last {len(self._kept)} processed frames, stamped {_stamp_text(self._kept[0].stamp)} … "
            f"{_stamp_text(self._kept[-1].stamp)}; give the image, or stamp the mask like its frame"
        )

    def on_forget(self, request: Forget.Request, response: Forget.Response) -> Forget.Response:
        """Remove a taught class and persist the change."""
        return self._answer("forget", response, lambda: self._forget(request, response))

    def _forget(self, request: Forget.Request, response: Forget.Response) -> Forget.Response:
        with self._pipeline_lock:
            self._loaded().forget(request.label)
        response.success = True
        response.message = f"forgot class {request.label!r}" + self._persist()
        self.get_logger().info(response.message)
        return response

    def _persist(self) -> str:
        """Save the taught classes; the change is in effect either way, so a failure is reported
        (logged, and returned as a suffix for the service's message) rather than refused."""
        with self._pipeline_lock:
            state = self._loaded().taught_state()
            store = self._store
        try:
            store.save(state)
        except Exception as err:  # StateError, or anything unexpected: the change stands
            self.get_logger().error(f"taught classes not saved: {err}")
            return f"; NOT saved, lost on restart: {err}"
        return ""

    def on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        """Undo self-adaptation: base proxies back to the checkpoint's, taught ones to what was
        taught (the taught classes stay); the kept frames are dropped (a new video starts)."""
        return self._answer("reset", response, lambda: self._reset(response))

    def _reset(self, response: Trigger.Response) -> Trigger.Response:
        with self._pipeline_lock:
            self._loaded().reset()
            self._kept.clear()
        response.success, response.message = True, "proxies reset to the checkpoint"
        self.get_logger().info(response.message)
        return response

    # --- diagnostics ----------------------------------------------------------------------

    def publish_diagnostics(self) -> None:
        """Publish :meth:`diagnostic_status` on /diagnostics (timer callback: never raises)."""
        try:
            array = DiagnosticArray(status=[self.diagnostic_status()])
            array.header.stamp = self.get_clock().now().to_msg()
            self.diagnostics_pub.publish(array)
        except Exception as err:
            if not self._closing:
                self.get_logger().error(f"diagnostics failed: {err!r}", throttle_duration_sec=5.0)

    def diagnostic_status(self) -> DiagnosticStatus:
        """The node's status, after diagnostic_updater's conventions: named "<fully qualified
        node name>: segmentation" (diagnostic_updater with use_fqn), the device as hardware id,
        the worst level of the conditions below and their messages joined by "; " ("running"
        when all is well; the lifecycle state when not active), the counters as values.

        WARN: no frame on ~/image for :data:`STALE_AFTER` s; fps below :data:`SLOWER_THAN_INPUT`
        of the input rate; frames dropped or inputs rejected within the last :data:`RECENT` s.
        ERROR: frames failed within the last :data:`RECENT` s.
        """
        clock = time.monotonic()
        state = self.state
        active = state == "active"
        with self._stats_lock:
            stats = dict(self._stats)
            window = [t for t in self._fps_window if clock - t < RATE_WINDOW]
            inputs = [t for t in self._input_window if clock - t < RATE_WINDOW]
        fps = (len(window) - 1) / (window[-1] - window[0]) if len(window) > 1 else 0.0
        input_fps = (len(inputs) - 1) / (inputs[-1] - inputs[0]) if len(inputs) > 1 else 0.0
        worker = self._worker
        counts = {
            "dropped": stats["dropped_before"] + (worker.dropped if worker else 0) + self._pairer.dropped,
            "rejected": stats["rejected"],
            "failed": stats["failed"],
        }
        for key, count in counts.items():
            if count > self._seen.get(key, 0):
                self._changed[key] = clock
            self._seen[key] = count

        def recent(key: str) -> bool:
            return clock - self._changed.get(key, -float("inf")) < RECENT

        problems: list[tuple[bytes, str]] = []
        if active and clock - self._last_input > STALE_AFTER:
            problems.append((DiagnosticStatus.WARN, f"no frame for {clock - self._last_input:.0f} s"))
        measured = len(inputs) >= 5 and inputs[-1] - inputs[0] >= 1.0  # not a start-up burst
        if active and measured and fps < SLOWER_THAN_INPUT * input_fps:
            problems.append((DiagnosticStatus.WARN, f"fps {fps:.1f} below the input rate {input_fps:.1f}"))
        if recent("dropped"):
            problems.append((DiagnosticStatus.WARN, "frames dropped"))
        if recent("rejected"):
            problems.append((DiagnosticStatus.WARN, "inputs rejected"))
        if recent("failed"):
            problems.append((DiagnosticStatus.ERROR, "frames failing"))
        values: dict[str, object] = {
            "state": state,
            "fps": f"{fps:.2f}",
            "input_fps": f"{input_fps:.2f}",
            "frames_processed": stats["processed"],
            "frames_dropped": counts["dropped"],
            "frames_failed": counts["failed"],
            "inputs_rejected": counts["rejected"],
            "last_latency_s": f"{stats['latency']:.3f}",
            "flow_source": self._flow_source_used,
            "flow_fallbacks": stats["flow_fallbacks"],
        }
        pipeline = self.pipeline
        if pipeline is not None:
            values["adaptation_updates"] = pipeline.adaptation_updates
            values["classes"] = ",".join(pipeline.class_names)
        idle = "running" if active else state
        return DiagnosticStatus(
            level=max((level for level, _ in problems), default=DiagnosticStatus.OK),
            name=f"{self.get_fully_qualified_name()}: segmentation",
            message="; ".join(message for _, message in problems) or idle,
            hardware_id=self._device(),
            values=[KeyValue(key=k, value=str(v)) for k, v in values.items()],
        )

    def stop_processing(self, timeout: float = 5.0) -> None:
        """Stop the worker thread (a frame in progress may finish, up to ``timeout`` s); what it
        still does afterwards is not reported as a failure."""
        self._closing = True
        worker = getattr(self, "_worker", None)  # None when not active or the constructor failed
        if worker is not None:
            worker.stop(timeout=timeout)

    def finish(self) -> None:
        """The shutdown transition (releases subscriptions, outputs, services and the model),
        from whichever primary state the node is in; nothing when it is finalized already."""
        if self.state in ("unconfigured", "inactive", "active"):
            self.trigger_shutdown()

    def destroy_node(self) -> None:
        """Stop the worker thread, then destroy the node (also after a failed constructor)."""
        self.stop_processing()
        super().destroy_node()


STARTUP_ERRORS = (AmpError, ParameterException, ValueError, TypeError, KeyError, OSError)
"""What a bad parameter or a missing/corrupt model raises while the node starts: reported as one
FATAL line, no traceback."""

STOP_TIMEOUT = 10.0
"""Seconds a stop waits for the frame in progress and for service calls in flight."""


def main(args: list[str] | None = None) -> None:
    """Entry point of ``ros2 run amp_ros vos_node``.

    SIGINT/SIGTERM only set a flag (rclpy's own handlers, which shut the context down under the
    running callbacks, are not installed; when run as a program the flag is set from the first
    line of this module on, before the slow imports): the worker stops, the executor finishes the
    callbacks in flight (a teach gets its reply), the node goes through its shutdown transition,
    and only then the node and the context go. A second signal while stopping is logged and
    ignored. Exit status 0 on a signal, 1 on a start-up error (one FATAL line) or an unexpected
    executor failure.
    """
    stop = _EARLY_STOP
    logger = None

    def on_signal(signum: int, _frame: object) -> None:
        if stop.is_set() and logger is not None:
            logger.warning(f"{signal.Signals(signum).name} again: already stopping")
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    logger = rclpy.logging.get_logger(NODE_NAME)
    node = None
    code = 0
    try:
        if stop.is_set():  # a signal while importing: do not load the model only to stop
            logger.info("stopped while starting")
            return
        try:
            node = VosNode()
        except STARTUP_ERRORS as err:  # e.g. no trained model: say so plainly, no traceback
            logger.fatal(f"cannot start: {err}")
            code = 1
        else:
            code = _serve(node, stop, logger)
    finally:
        if node is not None:
            try:
                node.finish()
            except Exception as err:  # the process ends anyway: one line, no traceback
                logger.warning(f"shutdown transition failed: {err!r}")
            node.destroy_node()
        rclpy.try_shutdown()
    if code:
        raise SystemExit(code)


def _serve(node: VosNode, stop: threading.Event, logger: Any) -> int:
    """Spin ``node`` on a background thread until ``stop`` is set (a signal) or the executor
    fails; then stop the worker and the executor in that order. Returns the exit status."""
    executor = MultiThreadedExecutor(num_threads=3)
    executor.add_node(node)
    failed = threading.Event()

    def spin() -> None:
        try:
            executor.spin()
        except ExternalShutdownException:
            pass
        except Exception:  # a callback that raised: log it once and stop the process
            if not stop.is_set():
                failed.set()
                logger.fatal(f"executor failed:\n{traceback.format_exc()}")
        finally:
            stop.set()

    spinner = threading.Thread(target=spin, name="amp_vos_spin", daemon=True)
    spinner.start()
    while not stop.is_set():  # sleep in the main thread: the signal handler runs promptly
        time.sleep(0.1)
    logger.info("stopping")
    node.stop_processing(timeout=STOP_TIMEOUT)
    executor.shutdown(timeout_sec=STOP_TIMEOUT)
    spinner.join(timeout=STOP_TIMEOUT)
    return 1 if failed.is_set() else 0


if __name__ == "__main__":
    main()
