"""The ``amp_vos`` node: camera frames (+ optional flow) in, moving-object masks out.

A thin adapter over :class:`amp_ros.pipeline.Pipeline`. Subscription callbacks only keep the
newest frame/flow pair; one worker thread segments the newest pair and publishes, so a slow
pipeline drops stale frames (counted) instead of building a queue.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace

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
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger

from amp_interfaces.srv import Forget, Teach
from amp_ros.class_store import ClassStore
from amp_ros.crf import CrfConfig
from amp_ros.errors import AmpError, InputError
from amp_ros.image_codec import array_to_fields, image_to_array, image_to_rgb
from amp_ros.models import resolve_checkpoint
from amp_ros.overlay import render_overlay
from amp_ros.pipeline import Pipeline
from amp_ros.pseudo_labels import PseudoLabelConfig
from amp_ros.settings import PipelineConfig
from amp_ros.stamp_sync import StampPairer, stamp_ns

NODE_NAME = "amp_vos"

# name: (default, description, range or choices, read_only)
_PARAMETERS: dict[str, tuple[object, str, object, bool]] = {
    "checkpoint": ("", "checkpoint: empty = the shipped default, a shipped model's name, or a folder",
                   None, True),
    "device": ("cpu", "cpu | cuda | auto", ("cpu", "cuda", "auto"), True),
    "threads": (0, "torch CPU threads; 0 = torch's default (all cores)", (0, 256), True),
    "max_side": (0, "processing size (longer side, px); 0 = the checkpoint's", (0, 4096), True),
    "qos": ("sensor_data", "input QoS: sensor_data (best effort) | reliable",
            ("sensor_data", "reliable"), True),
    "state_dir": ("~/.ros/amp_ros", "where taught classes persist", None, True),
    "max_image_pixels": (1920 * 1080, "larger frames are rejected", (1, 100_000_000), True),
    "flow_source": ("auto", "topic | dis | auto (DIS while ~/flow is silent)",
                    ("topic", "dis", "auto"), False),
    "flow_timeout": (1.0, "auto mode: seconds without flow before DIS takes over", (0.0, 60.0), False),
    "slop": (0.005, "max stamp difference (s) to pair a frame with a flow field", (0.0, 1.0), False),
    "adapt": (True, "self-adapt the background/object proxies every frame", None, False),
    "alpha": (0.001, "self-adaptation rate (AMP eq. 2)", (0.0, 1.0), False),
    "teach_alpha": (0.26, "rate when teaching a label that exists already", (0.0, 1.0), False),
    "foreground_threshold": (0.8, "pseudo-label: object probability above this is foreground",
                             (0.0, 1.0), False),
    "erosion": (0.01, "pseudo-label: foreground erosion, fraction of the diagonal", (0.0, 0.5), False),
    "background_distance": (0.1, "pseudo-label: background lies this far from the foreground "
                            "(fraction of the diagonal)", (0.0, 1.0), False),
    "mask_threshold": (0.5, "object probability above this is in ~/mask", (0.0, 1.0), False),
    "crf": (True, "refine with a dense CRF", None, False),
    "crf_iterations": (12, "mean-field iterations", (0, 100), False),
    "crf_gaussian_sxy": (0.22, "Gaussian kernel width (px at frame size)", (0.0, 1000.0), False),
    "crf_gaussian_compat": (1.25, "Gaussian kernel weight", (0.0, 100.0), False),
    "crf_bilateral_sxy": (22.4, "bilateral kernel spatial width (px at frame size)",
                          (0.0, 1000.0), False),
    "crf_bilateral_srgb": (7.7, "bilateral kernel colour width", (0.0, 255.0), False),
    "crf_bilateral_compat": (1.40, "bilateral kernel weight", (0.0, 100.0), False),
    "diagnostics_period": (1.0, "seconds between /diagnostics messages", (0.1, 60.0), True),
}


def _descriptor(name: str, description: str, limits: object, read_only: bool) -> ParameterDescriptor:
    descriptor = ParameterDescriptor(name=name, description=description, read_only=read_only)
    if isinstance(limits, tuple) and all(isinstance(x, str) for x in limits):
        descriptor.additional_constraints = "one of: " + ", ".join(limits)
    elif isinstance(limits, tuple) and isinstance(limits[0], float):
        descriptor.floating_point_range = [FloatingPointRange(from_value=limits[0], to_value=limits[1])]
    elif isinstance(limits, tuple):
        descriptor.integer_range = [IntegerRange(from_value=limits[0], to_value=limits[1], step=1)]
    return descriptor


def pipeline_config(values: dict[str, object]) -> PipelineConfig:
    """The pipeline settings that the node's run-time parameters describe."""
    return PipelineConfig(
        adapt=bool(values["adapt"]),
        alpha=float(values["alpha"]),
        teach_alpha=float(values["teach_alpha"]),
        pseudo=PseudoLabelConfig(
            foreground_threshold=float(values["foreground_threshold"]),
            erosion=float(values["erosion"]),
            background_distance=float(values["background_distance"]),
        ),
        crf=bool(values["crf"]),
        crf_config=CrfConfig(
            iterations=int(values["crf_iterations"]),
            gaussian_sxy=float(values["crf_gaussian_sxy"]),
            gaussian_compat=float(values["crf_gaussian_compat"]),
            bilateral_sxy=float(values["crf_bilateral_sxy"]),
            bilateral_srgb=float(values["crf_bilateral_srgb"]),
            bilateral_compat=float(values["crf_bilateral_compat"]),
        ),
        mask_threshold=float(values["mask_threshold"]),
    )


class VosNode(Node):
    """Online AMP video object segmentation as a ROS 2 node."""

    def __init__(self, **kwargs: object):
        super().__init__(NODE_NAME, **kwargs)
        for name, (default, description, limits, read_only) in _PARAMETERS.items():
            self.declare_parameter(name, default, _descriptor(name, description, limits, read_only))
        self._values = {name: self.get_parameter(name).value for name in _PARAMETERS}
        self._check_choices(self._values)

        self.pipeline = self._load_pipeline()
        self._pipeline_lock = threading.Lock()
        self._store = ClassStore(self._values["state_dir"])
        self._restore_taught_classes()
        self.add_on_set_parameters_callback(self._on_set_parameters)

        # Newest unprocessed (header, frame, flow-or-None, arrival time); the worker takes it.
        self._slot: tuple[object, np.ndarray, np.ndarray | None, float] | None = None
        self._slot_ready = threading.Condition()
        self._pairer: StampPairer[tuple[object, np.ndarray], np.ndarray] = StampPairer(
            int(self._values["slop"] * 1e9)
        )
        self._last_flow_time = -float("inf")
        self._stats = {"processed": 0, "dropped": 0, "rejected": 0, "latency": 0.0}
        self._fps_window: list[float] = []
        self._flow_source_used = "none"
        self._running = True

        qos = qos_profile_sensor_data if self._values["qos"] == "sensor_data" else QoSProfile(
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
        self.create_timer(self._values["diagnostics_period"], self.publish_diagnostics)

        self._worker = threading.Thread(target=self._work, name="amp_vos_worker", daemon=True)
        self._worker.start()
        self.get_logger().info(
            f"ready: checkpoint {self.pipeline.checkpoint.path}, device {self._device()}, "
            f"flow_source {self._values['flow_source']}, qos {self._values['qos']}, "
            f"taught classes {sorted(self.pipeline.taught_classes)}"
        )

    # --- set-up -------------------------------------------------------------------------

    def _check_choices(self, values: dict[str, object]) -> None:
        for name, (_, _, limits, _) in _PARAMETERS.items():
            if isinstance(limits, tuple) and isinstance(limits[0], str) and values[name] not in limits:
                raise ValueError(f"parameter {name} must be one of {limits}, got {values[name]!r}")

    def _device(self) -> str:
        import torch

        device = self._values["device"]
        if device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        return device

    def _load_pipeline(self) -> Pipeline:
        if self._values["threads"] > 0:
            import torch

            torch.set_num_threads(int(self._values["threads"]))
        path = resolve_checkpoint(self._values["checkpoint"])
        pipeline = Pipeline.from_checkpoint(
            path, device=self._device(), config=pipeline_config(self._values)
        )
        if self._values["max_side"]:
            checkpoint = pipeline.checkpoint
            checkpoint.input = replace(checkpoint.input, max_side=int(self._values["max_side"]))
        return pipeline

    def _restore_taught_classes(self) -> None:
        try:
            saved = self._store.load()
            if saved is not None:
                self.pipeline.restore_taught(saved)
        except AmpError as err:
            self.get_logger().error(f"taught classes not restored: {err}")

    def _on_set_parameters(self, parameters: list) -> SetParametersResult:
        values = dict(self._values)
        values.update({p.name: p.value for p in parameters})
        try:
            self._check_choices(values)
            config = pipeline_config(values)
        except (ValueError, TypeError) as err:
            return SetParametersResult(successful=False, reason=str(err))
        with self._pipeline_lock:
            self._values = values
            self.pipeline.config = config
            self._pairer.slop_ns = int(values["slop"] * 1e9)
        return SetParametersResult(successful=True)

    # --- inputs ---------------------------------------------------------------------------

    def on_image(self, msg: Image) -> None:
        """Decode a camera frame and offer it for processing (alone or paired with flow)."""
        try:
            if msg.height * msg.width > self._values["max_image_pixels"]:
                raise InputError(
                    f"frame {msg.width}×{msg.height} exceeds max_image_pixels "
                    f"{self._values['max_image_pixels']}"
                )
            frame = image_to_rgb(msg)
        except InputError as err:
            self._reject(f"frame rejected: {err}")
            return
        if self._use_flow_topic():
            pair = self._pairer.add_first(stamp_ns(msg.header), (msg.header, frame))
            if pair is not None:
                _, (header, frame), flow = pair
                self._offer(header, frame, flow)
        else:
            self._offer(msg.header, frame, None)

    def on_flow(self, msg: Image) -> None:
        """Decode a 32FC2 flow field and pair it with its frame."""
        if self._values["flow_source"] == "dis":
            return
        try:
            if msg.encoding != "32FC2":
                raise InputError(f"flow encoding must be 32FC2, got {msg.encoding!r}")
            if msg.height * msg.width > self._values["max_image_pixels"]:
                raise InputError(
                    f"flow {msg.width}×{msg.height} exceeds max_image_pixels "
                    f"{self._values['max_image_pixels']}"
                )
            flow = image_to_array(msg)
            if not np.isfinite(flow).all():
                raise InputError("flow contains NaN or inf")
        except InputError as err:
            self._reject(f"flow rejected: {err}")
            return
        # Only decodable flow counts as "the topic is alive": a topic sending garbage must not
        # keep auto mode from falling back to DIS.
        self._last_flow_time = time.monotonic()
        pair = self._pairer.add_second(stamp_ns(msg.header), flow)
        if pair is not None:
            _, (header, frame), flow = pair
            self._offer(header, frame, flow)

    def _use_flow_topic(self) -> bool:
        source = self._values["flow_source"]
        if source == "auto":
            return time.monotonic() - self._last_flow_time < self._values["flow_timeout"]
        return source == "topic"

    def _reject(self, message: str) -> None:
        self._stats["rejected"] += 1
        self.get_logger().warning(message, throttle_duration_sec=5.0)

    def _offer(self, header: object, frame: np.ndarray, flow: np.ndarray | None) -> None:
        with self._slot_ready:
            if self._slot is not None:
                self._stats["dropped"] += 1
            self._slot = (header, frame, flow, time.monotonic())
            self._slot_ready.notify()

    # --- processing -----------------------------------------------------------------------

    def _work(self) -> None:
        while self._running:
            with self._slot_ready:
                while self._slot is None and self._running:
                    self._slot_ready.wait(timeout=0.5)
                if not self._running:
                    return
                header, frame, flow, arrival = self._slot
                self._slot = None
            try:
                self._process(header, frame, flow, arrival)
            except AmpError as err:
                self._reject(f"frame skipped: {err}")
            except Exception as err:  # keep serving; the traceback goes to the log
                self.get_logger().error(f"frame failed: {err!r}")

    def _process(
        self, header: object, frame: np.ndarray, flow: np.ndarray | None, arrival: float
    ) -> None:
        with self._pipeline_lock:
            result = self.pipeline.step(frame, flow)
            labels_ids = self.pipeline.taught_classes
        self._flow_source_used = result.flow_source
        self._publish(self.mask_pub, header, result.mask, "mono8")
        if result.labels is not None and self.labels_pub.get_subscription_count():
            self._publish(self.labels_pub, header, result.labels, "mono8")
        if self.probability_pub.get_subscription_count():
            self._publish(self.probability_pub, header, result.probability, "32FC1")
        if self.overlay_pub.get_subscription_count():
            overlay = render_overlay(frame, result.mask, result.labels if labels_ids else None)
            self._publish(self.overlay_pub, header, overlay, "rgb8")
        now = time.time()
        self._stats["processed"] += 1
        self._stats["latency"] = time.monotonic() - arrival  # arrival to publish
        self._fps_window = [t for t in self._fps_window if now - t < 5.0] + [now]
        self.get_logger().debug(
            "timings " + " ".join(f"{k}={v * 1000:.1f}ms" for k, v in result.timings.items())
        )

    def _publish(self, publisher: object, header: object, array: np.ndarray, encoding: str) -> None:
        msg = Image(header=header, **array_to_fields(array, encoding))
        publisher.publish(msg)

    # --- services -------------------------------------------------------------------------

    def on_teach(self, request: Teach.Request, response: Teach.Response) -> Teach.Response:
        """Imprint (or adapt) a class from one labelled frame, and persist the taught classes."""
        response.class_id = -1
        try:
            label = request.label.strip()
            frame = None
            if request.image.height and request.image.width:
                frame = image_to_rgb(request.image)
            if request.mask.encoding not in ("mono8", "8UC1"):
                raise InputError(f"mask encoding must be mono8, got {request.mask.encoding!r}")
            mask = image_to_array(request.mask)
            if frame is not None and mask.shape != frame.shape[:2]:
                raise InputError(
                    f"mask is {mask.shape[1]}×{mask.shape[0]}, image is "
                    f"{frame.shape[1]}×{frame.shape[0]}"
                )
            with self._pipeline_lock:
                existed = label in self.pipeline.classifier.class_names
                class_id = self.pipeline.teach(label, mask, frame)
        except AmpError as err:
            response.success, response.message = False, str(err)
            self.get_logger().warning(f"teach refused: {err}")
            return response
        verb = "adapted" if existed else "imprinted"
        response.success, response.class_id = True, class_id
        response.message = f"{verb} class {label!r} (id {class_id})" + self._persist()
        self.get_logger().info(response.message)
        return response

    def on_forget(self, request: Forget.Request, response: Forget.Response) -> Forget.Response:
        """Remove a taught class and persist the change."""
        try:
            with self._pipeline_lock:
                self.pipeline.forget(request.label)
        except AmpError as err:
            response.success, response.message = False, str(err)
            return response
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
        except AmpError as err:
            self.get_logger().error(f"taught classes not saved: {err}")
            return f"; NOT saved, lost on restart: {err}"
        return ""

    def on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        """Undo self-adaptation: base proxies back to the checkpoint's (taught classes stay)."""
        with self._pipeline_lock:
            self.pipeline.reset()
        response.success, response.message = True, "proxies reset to the checkpoint"
        self.get_logger().info(response.message)
        return response

    # --- diagnostics ----------------------------------------------------------------------

    def publish_diagnostics(self) -> None:
        """Publish fps, drops, flow source, adaptation updates and classes on /diagnostics."""
        now = time.time()
        window = [t for t in self._fps_window if now - t < 5.0]
        fps = (len(window) - 1) / (window[-1] - window[0]) if len(window) > 1 else 0.0
        values = {
            "fps": f"{fps:.2f}",
            "frames_processed": self._stats["processed"],
            "frames_dropped": self._stats["dropped"] + self._pairer.dropped,
            "inputs_rejected": self._stats["rejected"],
            "last_latency_s": f"{self._stats['latency']:.3f}",
            "flow_source": self._flow_source_used,
            "adaptation_updates": self.pipeline.adaptation_updates,
            "classes": ",".join(self.pipeline.classifier.class_names),
        }
        status = DiagnosticStatus(
            level=DiagnosticStatus.OK,
            name=f"{NODE_NAME}: segmentation",
            message="running",
            hardware_id=self._device(),
            values=[KeyValue(key=k, value=str(v)) for k, v in values.items()],
        )
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics_pub.publish(array)

    def destroy_node(self) -> None:
        """Stop the worker thread, then destroy the node."""
        self._running = False
        with self._slot_ready:
            self._slot_ready.notify_all()
        self._worker.join(timeout=5.0)
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    """Entry point of ``ros2 run amp_ros vos_node``."""
    rclpy.init(args=args)
    node = None
    try:
        node = VosNode()
        executor = MultiThreadedExecutor(num_threads=3)
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except AmpError as err:  # e.g. no trained model: say so plainly, no traceback
        rclpy.logging.get_logger(NODE_NAME).fatal(str(err))
        raise SystemExit(1) from err
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
