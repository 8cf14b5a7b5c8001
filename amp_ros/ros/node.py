"""The ``amp_vos`` node: camera frames (+ optional flow) in, moving-object masks out.

A thin adapter over :class:`amp_ros.pipeline.Pipeline`. Subscription callbacks only offer the
newest frame/flow pair to a :class:`~amp_ros.latest_frame.LatestFrameWorker`, whose thread
segments it and publishes, so a slow pipeline drops stale frames (counted) instead of building a
queue. The parameters are declared from :class:`~amp_ros.ros.node_config.NodeConfig`.
"""

from __future__ import annotations

import re
import signal
import threading
import time
import traceback
from dataclasses import replace
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    SetParametersResult,
)
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger

from amp_interfaces.srv import Forget, Teach
from amp_ros.class_store import ClassStore
from amp_ros.errors import AmpError, InputError
from amp_ros.image_codec import image_to_array, image_to_rgb, stamp_ns
from amp_ros.latest_frame import LatestFrameWorker
from amp_ros.models import resolve_checkpoint
from amp_ros.overlay import render_overlay
from amp_ros.pipeline import Pipeline
from amp_ros.ros.messages import image_msg
from amp_ros.ros.node_config import NODE_NAME, PARAMETERS, NodeConfig
from amp_ros.setting_fields import Setting, build, check
from amp_ros.stamp_sync import StampPairer

# A frame to process: (header, frame, flow or None, arrival time).
Frame = tuple[Any, np.ndarray, np.ndarray | None, float]

STALE_AFTER = 5.0
"""Seconds without a frame on ``~/image`` after which /diagnostics warns that input is stale."""

LOG_EVERY = 5.0
"""Seconds between two log lines of the same kind of repeated problem (rejected input, failed
frame, DIS fallback); each kind is throttled on its own, the skipped ones are counted."""

RECENT = 5.0
"""Seconds for which a dropped frame, rejected input or failed frame keeps /diagnostics at WARN
(drops, rejections) or ERROR (failures)."""


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


class VosNode(Node):
    """Online AMP video object segmentation as a ROS 2 node."""

    def __init__(self, **kwargs: object):
        self._closing = False  # set by stop_processing (the node is stopping)
        super().__init__(NODE_NAME, **kwargs)
        for item in PARAMETERS:
            self.declare_parameter(item.name, item.default, parameter_descriptor(item))
        values = {item.name: self.get_parameter(item.name).value for item in PARAMETERS}
        check(PARAMETERS, values)
        self._config: NodeConfig = build(NodeConfig, values)

        self.pipeline = self._load_pipeline()
        self._pipeline_lock = threading.Lock()
        self._store = ClassStore(self._config.state_dir)
        self._restore_taught_classes()
        self.add_on_set_parameters_callback(self._on_set_parameters)

        self._pairer: StampPairer[tuple[object, np.ndarray], np.ndarray] = StampPairer(
            int(self._config.slop * 1e9)
        )
        self._last_flow_time = -float("inf")
        # Counters, updated from the input callbacks, the worker and the services: under _stats_lock.
        self._stats_lock = threading.Lock()
        self._stats = {"processed": 0, "rejected": 0, "failed": 0, "flow_fallbacks": 0, "latency": 0.0}
        self._logged: dict[str, tuple[float, int]] = {}  # kind → (last logged, skipped since)
        self._last_input = time.monotonic()  # the last message on ~/image (start: node start)
        self._seen: dict[str, int] = {}  # counts at the last /diagnostics status
        self._changed: dict[str, float] = {}  # when each count last grew (monotonic)
        self._fps_window: list[float] = []
        self._flow_source_used = "none"
        self._worker: LatestFrameWorker[Frame] = LatestFrameWorker(self._handle, name="amp_vos_worker")

        qos = qos_profile_sensor_data if self._config.qos == "sensor_data" else QoSProfile(
            depth=5, reliability=ReliabilityPolicy.RELIABLE
        )
        inputs = MutuallyExclusiveCallbackGroup()
        self.create_subscription(Image, "~/image", self.on_image, qos, callback_group=inputs)
        self.create_subscription(Image, "~/flow", self.on_flow, qos, callback_group=inputs)
        out_qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        self.mask_pub = self.create_publisher(Image, "~/mask", out_qos)
        self.labels_pub = self.create_publisher(Image, "~/labels", out_qos)
        self.probability_pub = self.create_publisher(Image, "~/probability", out_qos)
        self.overlay_pub = self.create_publisher(Image, "~/overlay", out_qos)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)

        services = MutuallyExclusiveCallbackGroup()
        self.create_service(Teach, "/amp/teach", self.on_teach, callback_group=services)
        self.create_service(Forget, "/amp/forget", self.on_forget, callback_group=services)
        self.create_service(Trigger, "/amp/reset", self.on_reset, callback_group=services)
        self.create_timer(self._config.diagnostics_period, self.publish_diagnostics)

        self._worker.start()
        self.get_logger().info(
            f"ready: checkpoint {self.pipeline.checkpoint.path}, device {self._device()}, "
            f"flow_source {self._config.flow_source}, qos {self._config.qos}, "
            f"taught classes {sorted(self.pipeline.taught_classes)}"
        )

    # --- set-up -------------------------------------------------------------------------

    def _device(self) -> str:
        import torch

        device = self._config.device
        if device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        return device

    def _load_pipeline(self) -> Pipeline:
        if self._config.threads > 0:
            import torch

            torch.set_num_threads(self._config.threads)
        path = resolve_checkpoint(self._config.checkpoint)
        pipeline = Pipeline.from_checkpoint(path, device=self._device(), config=self._config.pipeline)
        if self._config.max_side:
            checkpoint = pipeline.checkpoint
            checkpoint.input = replace(checkpoint.input, max_side=self._config.max_side)
        return pipeline

    def _restore_taught_classes(self) -> None:
        try:
            saved = self._store.load()
            if saved is not None:
                self.pipeline.restore_taught(saved)
        except AmpError as err:
            self.get_logger().error(f"taught classes not restored: {err}")

    def _on_set_parameters(self, parameters: list) -> SetParametersResult:
        values = {item.name: self.get_parameter(item.name).value for item in PARAMETERS}
        values.update({p.name: p.value for p in parameters})
        try:
            check(PARAMETERS, values)
            config = build(NodeConfig, values)
        except (KeyError, ValueError, TypeError) as err:
            return SetParametersResult(successful=False, reason=str(err))
        with self._pipeline_lock:
            self._config = config
            self.pipeline.config = config.pipeline
            self._pairer.slop_ns = int(config.slop * 1e9)
        return SetParametersResult(successful=True)

    # --- inputs ---------------------------------------------------------------------------

    def on_image(self, msg: Image) -> None:
        """Decode a camera frame and offer it for processing (alone or paired with flow)."""
        self._last_input = time.monotonic()
        try:
            self._on_image(msg)
        except Exception as err:  # an exception would end spin(): count, log, go on
            self._frame_failed(err)

    def _on_image(self, msg: Image) -> None:
        try:
            self._check_size("frame", msg)
            frame = image_to_rgb(msg)
        except InputError as err:
            self._reject(f"frame rejected: {err}")
            return
        if self._use_flow_topic():
            pair = self._pairer.add_first(stamp_ns(msg.header), (msg.header, frame))
            if pair is not None:
                _, (header, frame), flow = pair
                self._offer_pair(header, frame, flow)
        else:
            self._offer(msg.header, frame, None)

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
        self._worker.offer((header, frame, flow, time.monotonic()))

    # --- processing (on the worker thread) ------------------------------------------------

    def _handle(self, item: Frame) -> None:
        try:
            self._process(*item)
        except AmpError as err:
            self._reject(f"frame skipped: {err}")
        except Exception as err:  # keep serving; counted, the traceback goes to the log
            if self._closing:  # e.g. publishing while the node goes away: not a failure
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
        with self._pipeline_lock:
            result = self.pipeline.step(frame, flow)
        self._flow_source_used = result.flow_source
        self._publish(self.mask_pub, header, result.mask, "mono8")
        if result.labels is not None and self.labels_pub.get_subscription_count():
            self._publish(self.labels_pub, header, result.labels, "mono8")
        if self.probability_pub.get_subscription_count():
            self._publish(self.probability_pub, header, result.probability, "32FC1")
        if self.overlay_pub.get_subscription_count():
            overlay = render_overlay(frame, result.mask, result.labels)  # labels: None if none taught
            self._publish(self.overlay_pub, header, overlay, "rgb8")
        now = time.time()
        with self._stats_lock:
            self._stats["processed"] += 1
            self._stats["latency"] = time.monotonic() - arrival  # arrival to publish
            self._fps_window = [t for t in self._fps_window if now - t < 5.0] + [now]
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

    def on_teach(self, request: Teach.Request, response: Teach.Response) -> Teach.Response:
        """Imprint (or adapt) a class from one labelled frame, and persist the taught classes.

        The class gets an object proxy from the masked pixels and background proxies of its
        own from the rest of the frame; an empty image means the last processed frame."""
        response.class_id = -1
        return self._answer("teach", response, lambda: self._teach(request, response))

    def _teach(self, request: Teach.Request, response: Teach.Response) -> Teach.Response:
        label = request.label.strip()
        image, frame = request.image, None
        if image.height or image.width:  # 0×0 = no image (the last frame); 0×N is not that
            if not (image.height and image.width):
                raise InputError(
                    f"image is {image.width}×{image.height}: give both sizes, or 0×0 for the last frame"
                )
            self._check_size("image", image)
            frame = image_to_rgb(image)
        self._check_size("mask", request.mask)
        if request.mask.encoding not in ("mono8", "8UC1"):
            raise InputError(f"mask encoding must be mono8, got {request.mask.encoding!r}")
        mask = image_to_array(request.mask)
        with self._pipeline_lock:  # the pipeline checks the mask against its frame
            taught = self.pipeline.teach(label, mask, frame)
        verb = "imprinted" if taught.imprinted else "adapted"
        response.success, response.class_id = True, taught.class_id
        response.message = f"{verb} class {taught.label!r} (id {taught.class_id})" + self._persist()
        self.get_logger().info(response.message)
        return response

    def on_forget(self, request: Forget.Request, response: Forget.Response) -> Forget.Response:
        """Remove a taught class and persist the change."""
        return self._answer("forget", response, lambda: self._forget(request, response))

    def _forget(self, request: Forget.Request, response: Forget.Response) -> Forget.Response:
        with self._pipeline_lock:
            self.pipeline.forget(request.label)
        response.success = True
        response.message = f"forgot class {request.label!r}" + self._persist()
        self.get_logger().info(response.message)
        return response

    def _persist(self) -> str:
        """Save the taught classes; the change is in effect either way, so a failure is reported
        (logged, and returned as a suffix for the service's message) rather than refused."""
        with self._pipeline_lock:
            state = self.pipeline.taught_state()
        try:
            self._store.save(state)
        except Exception as err:  # StateError, or anything unexpected: the change stands
            self.get_logger().error(f"taught classes not saved: {err}")
            return f"; NOT saved, lost on restart: {err}"
        return ""

    def on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        """Undo self-adaptation: base proxies back to the checkpoint's, taught ones to what was
        taught (the taught classes stay)."""
        return self._answer("reset", response, lambda: self._reset(response))

    def _reset(self, response: Trigger.Response) -> Trigger.Response:
        with self._pipeline_lock:
            self.pipeline.reset()
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
        """The node's status, after diagnostic_updater's conventions: named "<node name>:
        segmentation", the device as hardware id, the worst level of the conditions below and
        their messages joined by "; " ("running" when all is well), the counters as values.

        WARN: no frame on ~/image for :data:`STALE_AFTER` s; frames dropped or inputs rejected
        within the last :data:`RECENT` s. ERROR: frames failed within the last :data:`RECENT` s.
        """
        now, clock = time.time(), time.monotonic()
        with self._stats_lock:
            stats = dict(self._stats)
            window = [t for t in self._fps_window if now - t < 5.0]
        fps = (len(window) - 1) / (window[-1] - window[0]) if len(window) > 1 else 0.0
        counts = {
            "dropped": self._worker.dropped + self._pairer.dropped,
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
        if clock - self._last_input > STALE_AFTER:
            problems.append((DiagnosticStatus.WARN, f"no frame for {clock - self._last_input:.0f} s"))
        if recent("dropped"):
            problems.append((DiagnosticStatus.WARN, "frames dropped"))
        if recent("rejected"):
            problems.append((DiagnosticStatus.WARN, "inputs rejected"))
        if recent("failed"):
            problems.append((DiagnosticStatus.ERROR, "frames failing"))
        values = {
            "fps": f"{fps:.2f}",
            "frames_processed": stats["processed"],
            "frames_dropped": counts["dropped"],
            "frames_failed": counts["failed"],
            "inputs_rejected": counts["rejected"],
            "last_latency_s": f"{stats['latency']:.3f}",
            "flow_source": self._flow_source_used,
            "flow_fallbacks": stats["flow_fallbacks"],
            "adaptation_updates": self.pipeline.adaptation_updates,
            "classes": ",".join(self.pipeline.class_names),
        }
        return DiagnosticStatus(
            level=max((level for level, _ in problems), default=DiagnosticStatus.OK),
            name=f"{self.get_name()}: segmentation",
            message="; ".join(message for _, message in problems) or "running",
            hardware_id=self._device(),
            values=[KeyValue(key=k, value=str(v)) for k, v in values.items()],
        )

    def stop_processing(self, timeout: float = 5.0) -> None:
        """Stop the worker thread (a frame in progress may finish, up to ``timeout`` s); what it
        still does afterwards is not reported as a failure."""
        self._closing = True
        worker = getattr(self, "_worker", None)  # None when the constructor failed early
        if worker is not None:
            worker.stop(timeout=timeout)

    def destroy_node(self) -> None:
        """Stop the worker thread, then destroy the node (also after a failed constructor)."""
        self.stop_processing()
        super().destroy_node()


STARTUP_ERRORS = (AmpError, ParameterException, ValueError, TypeError, KeyError)
"""What a bad parameter or a missing/corrupt model raises while the node starts: reported as one
FATAL line, no traceback."""

STOP_TIMEOUT = 10.0
"""Seconds a stop waits for the frame in progress and for service calls in flight."""


def main(args: list[str] | None = None) -> None:
    """Entry point of ``ros2 run amp_ros vos_node``.

    SIGINT/SIGTERM only set a flag (rclpy's own handlers, which shut the context down under the
    running callbacks, are not installed): the worker stops, the executor finishes the callbacks
    in flight (a teach gets its reply), and only then the node and the context go. A second
    signal while stopping is logged and ignored. Exit status 0 on a signal, 1 on a start-up error
    (one FATAL line) or an unexpected executor failure.
    """
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    logger = rclpy.logging.get_logger(NODE_NAME)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        if stop.is_set():
            logger.warning(f"{signal.Signals(signum).name} again: already stopping")
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    node = None
    code = 0
    try:
        try:
            node = VosNode()
        except STARTUP_ERRORS as err:  # e.g. no trained model: say so plainly, no traceback
            logger.fatal(f"cannot start: {err}")
            code = 1
        else:
            code = _serve(node, stop, logger)
    finally:
        if node is not None:
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
