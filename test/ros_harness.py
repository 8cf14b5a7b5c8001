"""Test helpers: the ``amp_vos`` node as a subprocess, and an rclpy client with its own Context.

The node runs in its own process (``python -m amp_ros.ros.node --ros-args -p ...``) on a private,
localhost-only ROS domain with the shared-memory Fast DDS profile; the test process talks to it
through :class:`RosClient`, which owns an explicit rclpy Context on the same domain and spins it
in a background thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.context import Context
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from amp_interfaces.srv import Teach
from amp_ros.image_codec import stamp_ns as header_stamp_ns
from amp_ros.ros import node_process
from amp_ros.ros.dds_env import REPO as REPO  # re-exported for the node tests
from amp_ros.ros.dds_env import child_env, dds_variables_applied, fastdds_profile
from amp_ros.ros.messages import image_msg as ros_image_msg
from amp_ros.ros.node_process import START_TIMEOUT

FASTDDS_PROFILES = fastdds_profile()
NODE_NAME = "amp_vos"


def ros_env(domain_id: int) -> dict[str, str]:
    """The environment of a test process on ``domain_id``: localhost discovery, the SHM profile.

    One intra-op thread: on two shared cores, torch's spinning OpenMP workers slow the tiny test
    network down a hundredfold whenever another process runs (0.01 s → 1 s per frame).
    """
    return child_env(domain_id, threads=1)


@contextmanager
def process_ros_env() -> Iterator[None]:
    """Set the discovery range and the Fast DDS profile in this process (restored on exit).

    Fast DDS reads the profile when the process creates its first participant, so this must be in
    place before the first ``rclpy.init``. The domain id is passed to each Context explicitly.
    """
    with dds_variables_applied():
        yield


class NodeProcess(node_process.NodeProcess):
    """The product's node launcher with one torch thread, made ready through a RosClient."""

    def __init__(
        self, *, domain_id: int, log_path: Path, params_file: Path | None = None, **parameters: object
    ):
        """As the product's; ``parameters`` may also hold namespace, name, remap and env."""
        super().__init__(domain_id=domain_id, log_path=log_path, params_file=params_file,
                         omp_threads=1, **parameters)

    def wait_ready(self, client: RosClient, timeout: float = START_TIMEOUT) -> None:  # type: ignore[override]
        """Wait until the node's services are up, seen from the test's client node."""
        super().wait_ready(client.node, timeout)


class Recorder:
    """Collects the messages of one topic (receive time, message) for waiting on conditions."""

    def __init__(self) -> None:
        self.messages: list[tuple[float, Any]] = []
        self._changed = threading.Condition()

    def on_message(self, msg: Any) -> None:
        """Subscription callback."""
        with self._changed:
            self.messages.append((time.monotonic(), msg))
            self._changed.notify_all()

    def clear(self) -> None:
        """Forget what was received."""
        with self._changed:
            self.messages.clear()

    def snapshot(self) -> list[Any]:
        """The messages received so far."""
        with self._changed:
            return [msg for _, msg in self.messages]

    def wait_for(
        self, predicate: Callable[[Any], bool], timeout: float, since: float = -float("inf")
    ) -> Any | None:
        """The first message received at or after ``since`` (monotonic) that satisfies
        ``predicate``; None if none comes within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        checked = 0
        with self._changed:
            while True:
                for received, msg in self.messages[checked:]:
                    if received >= since and predicate(msg):
                        return msg
                checked = len(self.messages)
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._changed.wait(left)


class RosClient:
    """An rclpy node with its own Context on ``domain_id``, spun in a background thread."""

    def __init__(self, domain_id: int, name: str = "amp_test_client"):
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = Node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._clients: dict[str, Any] = {}
        self._thread = threading.Thread(target=self._spin, name=f"{name}_spin", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except ExternalShutdownException:
            pass

    def close(self) -> None:
        """Stop spinning, destroy the node, shut the context down."""
        self.executor.shutdown(timeout_sec=5.0)
        self.context.try_shutdown()
        self._thread.join(timeout=5.0)
        self.node.destroy_node()

    def __enter__(self) -> RosClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- services ---------------------------------------------------------------------------

    def service_client(self, name: str, srv_type: type | None = None) -> Any:
        """A (cached) client of service ``name``; the type defaults to the node's services."""
        if name not in self._clients:
            if srv_type is None:
                from std_srvs.srv import Trigger

                from amp_interfaces.srv import Forget

                kinds = {"amp/teach": Teach, "amp/forget": Forget, "amp/reset": Trigger}
                srv_type = next(kind for tail, kind in kinds.items() if name.endswith(tail))
            self._clients[name] = self.node.create_client(srv_type, name)
        return self._clients[name]

    def call(self, name: str, request: Any, srv_type: type | None = None, timeout: float = 30.0) -> Any:
        """Call service ``name`` and return its response; TimeoutError if none comes in time."""
        client = self.service_client(name, srv_type)
        if not client.wait_for_service(timeout_sec=timeout):
            raise TimeoutError(f"service {name} not available")
        done = threading.Event()
        future = client.call_async(request)
        future.add_done_callback(lambda _: done.set())
        if not done.wait(timeout):
            client.remove_pending_request(future)
            raise TimeoutError(f"no answer from {name} within {timeout} s")
        return future.result()

    # --- topics -----------------------------------------------------------------------------

    def record(self, msg_type: type, topic: str, qos: QoSProfile | int | None = None) -> Recorder:
        """Subscribe to ``topic`` (reliable, depth 50 by default) and record what arrives."""
        recorder = Recorder()
        if qos is None:
            qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(msg_type, topic, recorder.on_message, qos)
        return recorder

    def wait_for_subscriber(self, publisher: Any, timeout: float = 30.0) -> None:
        """Wait until ``publisher`` is matched with at least one subscription."""
        deadline = time.monotonic() + timeout
        while publisher.get_subscription_count() < 1:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nobody subscribes to {publisher.topic_name}")
            time.sleep(0.05)

    def wait_for_publisher(self, topic: str, timeout: float = 30.0) -> None:
        """Wait until somebody publishes on ``topic``."""
        deadline = time.monotonic() + timeout
        while self.node.count_publishers(topic) < 1:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nobody publishes {topic}")
            time.sleep(0.05)


def clean_exit_problems(log: str) -> list[str]:
    """What must not be in the log of a node stopped by a signal (empty list: a clean stop)."""
    bad = ("Traceback", "terminate called", "frame failed", "RCLError", "[ERROR]", "[FATAL]")
    return [text for text in bad if text in log]


# --- messages -------------------------------------------------------------------------------


def image_msg(array: np.ndarray, encoding: str, stamp_ns: int = 0, frame_id: str = "camera") -> Image:
    """A sensor_msgs/Image of ``array`` stamped ``stamp_ns``."""
    return ros_image_msg(array, encoding, stamp_ns=stamp_ns, frame_id=frame_id)


def stamp_ns(msg: Any) -> int:
    """A message's header stamp in nanoseconds."""
    return header_stamp_ns(msg.header)


def pixels(msg: Image) -> np.ndarray:
    """A mono8 or 32FC1 Image's pixels as an H×W array (the node publishes unpadded rows)."""
    dtype = np.float32 if msg.encoding == "32FC1" else np.uint8
    return np.frombuffer(bytes(msg.data), dtype).reshape(msg.height, msg.width)


def diagnostic_values(
    msg: DiagnosticArray, name: str = f"/{NODE_NAME}: segmentation"
) -> dict[str, str] | None:
    """The key/values of the node's status in a /diagnostics message, None if it has none."""
    for status in msg.status:
        if status.name == name:
            return {kv.key: kv.value for kv in status.values}
    return None


class VosSession:
    """One test client's view of one running node: input publishers, output recorders, helpers.

    Frames get increasing stamps (``next_stamp``); :meth:`segment` publishes a frame (and its
    flow) and returns the mask with the same stamp, re-publishing if a best-effort frame is lost.
    """

    def __init__(self, client: RosClient, node: NodeProcess, *, outputs: tuple[str, ...] = ("mask",)):
        from rclpy.qos import qos_profile_sensor_data

        self.client, self.node = client, node
        self.image_pub = client.node.create_publisher(Image, f"{node.fqn}/image", qos_profile_sensor_data)
        self.flow_pub = client.node.create_publisher(Image, f"{node.fqn}/flow", qos_profile_sensor_data)
        self.outputs = {name: client.record(Image, f"{node.fqn}/{name}") for name in outputs}
        self.diagnostics = client.record(DiagnosticArray, "/diagnostics")
        self.status_name = f"{node.fqn}: segmentation"
        self._stamp = 1_000_000_000

    @property
    def masks(self) -> Recorder:
        """The ~/mask messages."""
        return self.outputs["mask"]

    def next_stamp(self) -> int:
        """A fresh frame stamp (ns), 1/30 s after the previous one."""
        self._stamp += 33_333_333
        return self._stamp

    def stream_until(self, messages: list[Image], stop: threading.Event, rate: float = 30.0) -> None:
        """Publish ``messages`` in a loop at ``rate`` Hz, each with a fresh stamp, until ``stop``
        is set (run it in a thread to keep frames coming while something else happens)."""
        count = 0
        while not stop.is_set():
            msg = messages[count % len(messages)]
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(self.next_stamp(), 1_000_000_000)
            self.image_pub.publish(msg)
            count += 1
            time.sleep(1 / rate)

    def segment(
        self, frame: np.ndarray, flow: np.ndarray | None = None, *, timeout: float = 30.0,
        output: str = "mask",
    ) -> Image:
        """Publish ``frame`` (rgb8) and ``flow`` (32FC2) with one new stamp; the output with it."""
        stamp = self.next_stamp()
        frame_msg = image_msg(frame, "rgb8", stamp)
        flow_msg = None if flow is None else image_msg(flow, "32FC2", stamp)
        recorder = self.outputs[output]
        deadline = time.monotonic() + timeout
        self.client.wait_for_subscriber(self.image_pub)
        while True:
            if flow_msg is not None:
                self.flow_pub.publish(flow_msg)
            self.image_pub.publish(frame_msg)
            found = recorder.wait_for(lambda m: stamp_ns(m) == stamp, min(3.0, timeout))
            if found is not None:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no {output} for frame {stamp} within {timeout} s; node log:\n{self.node.log()[-3000:]}"
                )

    def diagnostics_now(self, predicate: Callable[[dict[str, str]], bool] = lambda _: True,
                        timeout: float = 15.0) -> dict[str, str]:
        """The values of the first /diagnostics message from now on that satisfies ``predicate``."""
        def matches(msg: DiagnosticArray) -> bool:
            values = diagnostic_values(msg, self.status_name)
            return values is not None and predicate(values)

        found = self.diagnostics.wait_for(matches, timeout, since=time.monotonic())
        if found is None:
            last = self.diagnostics.snapshot()[-1:]
            raise AssertionError(
                f"no matching diagnostics within {timeout} s; last: "
                f"{diagnostic_values(last[0], self.status_name) if last else None}"
            )
        return diagnostic_values(found, self.status_name)
