"""The ``amp_vos`` node as a ROS user manages it: lifecycle transitions through the real lifecycle
services, two nodes in two namespaces, compressed camera input and QoS overrides.

Real rclpy, each node in its own process on a private localhost-only ROS domain (ros_domains.py:
lifecycle*) with the shared-memory Fast DDS profile. Waits are on conditions with deadlines.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.srv import GetParameters
from rclpy.parameter import parameter_value_to_python
from rclpy.qos import QoSProfile, ReliabilityPolicy
from ros_domains import domain
from ros_harness import (
    REPO,
    NodeProcess,
    RosClient,
    VosSession,
    clean_exit_problems,
    image_msg,
    pixels,
    process_ros_env,
    stamp_ns,
)
from sensor_msgs.msg import CompressedImage, Image

from amp_interfaces.srv import Teach
from amp_ros.class_store import STATE_FILE
from amp_ros.ros.dds_env import apply_dds_variables

apply_dds_variables()  # before this process's first participant (see test_node.py)

DOMAIN_LIFECYCLE, DOMAIN_NAMESPACES, DOMAIN_COMPRESSED, DOMAIN_BAD_CONFIGURE = (
    domain(name) for name in (
        "lifecycle", "lifecycle_namespaces", "lifecycle_compressed", "lifecycle_bad_configure"))
HEIGHT, WIDTH = 48, 64
DEMO_FRAMES = REPO / "data" / "demo" / "JPEGImages" / "480p" / "hike"


@pytest.fixture(scope="module", autouse=True)
def _ros_environment() -> Iterator[None]:
    with process_ros_env():
        yield


def square(index: int) -> np.ndarray:
    """A red square at a position that depends on ``index``, on a grey gradient (H×W×3 RGB)."""
    frame = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    frame[..., 1] = np.linspace(40, 160, WIDTH, dtype=np.uint8)[None, :]
    left = 8 + 2 * (index % 10)
    frame[16:32, left:left + 16] = (230, 30, 30)
    return frame


def square_mask(index: int) -> np.ndarray:
    return np.where((square(index) == (230, 30, 30)).all(-1), 255, 0).astype(np.uint8)


def wait_until(condition: Callable[[], bool], what: str, node: NodeProcess, timeout: float = 30.0) -> None:
    """Wait for ``condition``; AssertionError with the node's log if it does not come."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} not reached in {timeout} s:\n{node.log()[-3000:]}"
        time.sleep(0.05)


def lifecycle_state(client: RosClient, node: NodeProcess) -> str:
    """The node's lifecycle state, asked through its get_state service."""
    response = client.call(node.lifecycle_service("get_state"), GetState.Request(), GetState)
    return response.current_state.label


def change_state(client: RosClient, node: NodeProcess, transition: int) -> bool:
    """Ask the node for ``transition`` through its change_state service; whether it succeeded."""
    request = ChangeState.Request(transition=Transition(id=transition))
    return client.call(node.lifecycle_service("change_state"), request, ChangeState, timeout=60.0).success


def stop_cleanly(node: NodeProcess) -> None:
    code = node.stop(timeout=60.0)
    log = node.log()
    assert code == 0 and not clean_exit_problems(log), log


def test_lifecycle_through_the_lifecycle_services(tiny_checkpoint: Path, tmp_path: Path) -> None:
    """autostart:=false: unconfigured, no camera subscription, no teach service; configure →
    inactive (teach served, camera not subscribed); activate → masks; deactivate → the camera is
    released; activate again → masks again; deactivate + cleanup → unconfigured, services gone;
    SIGINT → exit status 0."""
    with RosClient(DOMAIN_LIFECYCLE) as client:
        node = NodeProcess(domain_id=DOMAIN_LIFECYCLE, log_path=tmp_path / "node.log", autostart=False,
                           checkpoint=str(tiny_checkpoint), state_dir=str(tmp_path / "state"),
                           diagnostics_period=0.2).start()
        try:
            node.wait_ready(client)
            session = VosSession(client, node)
            teach_service = client.service_client("/amp/teach")

            def camera_subscribed() -> bool:
                return client.node.count_subscribers(f"{node.fqn}/image") > 0

            assert lifecycle_state(client, node) == "unconfigured"
            assert not camera_subscribed() and not teach_service.service_is_ready()
            assert session.diagnostics_now(lambda v: v["state"] == "unconfigured")

            assert change_state(client, node, Transition.TRANSITION_CONFIGURE), node.log()
            assert lifecycle_state(client, node) == "inactive"
            wait_until(teach_service.service_is_ready, "the teach service", node)
            taught = client.call("/amp/teach", Teach.Request(
                label="cup", image=image_msg(square(0), "rgb8", 5), mask=image_msg(square_mask(0), "mono8")))
            assert taught.success, taught.message  # teaching needs the model, not the camera
            assert (taught.stamp.sec, taught.stamp.nanosec) == (0, 5)
            assert not camera_subscribed()
            inactive_stamp = session.next_stamp()
            session.image_pub.publish(image_msg(square(1), "rgb8", inactive_stamp))

            for round_ in range(2):
                assert change_state(client, node, Transition.TRANSITION_ACTIVATE), node.log()
                assert lifecycle_state(client, node) == "active"
                mask = session.segment(square(2 + round_))
                assert (mask.height, mask.width) == (HEIGHT, WIDTH)
                assert session.diagnostics_now(lambda v: v["state"] == "active")
                assert change_state(client, node, Transition.TRANSITION_DEACTIVATE), node.log()
                assert lifecycle_state(client, node) == "inactive"
                wait_until(lambda: not camera_subscribed(), "the camera released", node)
            assert all(stamp_ns(m) != inactive_stamp for m in session.masks.snapshot())

            assert change_state(client, node, Transition.TRANSITION_CLEANUP), node.log()
            assert lifecycle_state(client, node) == "unconfigured"
            wait_until(lambda: not teach_service.service_is_ready(), "the teach service gone", node)
            assert change_state(client, node, Transition.TRANSITION_CONFIGURE), node.log()
            assert node.wait_for_log("taught classes ['cup']"), node.log()  # restored again
        finally:
            stop_cleanly(node)


def test_failed_configure_leaves_the_node_unconfigured(tmp_path: Path) -> None:
    """autostart:=false and a missing checkpoint: configure answers success=false, the error is
    logged in one line (no traceback), the node stays unconfigured and serves its services."""
    with RosClient(DOMAIN_BAD_CONFIGURE) as client:
        node = NodeProcess(domain_id=DOMAIN_BAD_CONFIGURE, log_path=tmp_path / "node.log", autostart=False,
                           checkpoint=str(tmp_path / "missing"), state_dir=str(tmp_path / "state")).start()
        try:
            node.wait_ready(client)
            assert not change_state(client, node, Transition.TRANSITION_CONFIGURE)
            assert lifecycle_state(client, node) == "unconfigured"
            assert node.wait_for_log("configure failed:"), node.log()
            assert str(tmp_path / "missing") in node.log() and "Traceback" not in node.log()
        finally:
            assert node.stop(timeout=60.0) == 0, node.log()


def test_two_nodes_in_two_namespaces_do_not_collide(tiny_checkpoint: Path, tmp_path: Path) -> None:
    """/cam1/amp_vos and /cam2/amp_vos with config/vos.yaml (/** key) and the default state_dir:
    each serves /<ns>/amp/teach and its own topics, keeps its own state file under ROS_HOME, and
    reports under its own name on /diagnostics; no /amp/teach exists."""
    ros_home = tmp_path / "ros_home"
    with RosClient(DOMAIN_NAMESPACES) as client:
        nodes = {
            ns: NodeProcess(domain_id=DOMAIN_NAMESPACES, log_path=tmp_path / f"{ns}.log", namespace=ns,
                            params_file=REPO / "config" / "vos.yaml", env={"ROS_HOME": str(ros_home)},
                            checkpoint=str(tiny_checkpoint), diagnostics_period=0.2).start()
            for ns in ("cam1", "cam2")
        }
        try:
            for node in nodes.values():
                node.wait_ready(client)
            labels = {"cam1": "cup", "cam2": "box"}
            for ns in nodes:
                request = Teach.Request(label=labels[ns], image=image_msg(square(0), "rgb8"),
                                        mask=image_msg(square_mask(0), "mono8"))
                response = client.call(f"/{ns}/amp/teach", request)
                assert response.success and response.class_id == 2, response.message
            services = {name for name, _ in client.node.get_service_names_and_types()}
            assert "/amp/teach" not in services
            for ns, node in nodes.items():
                assert (ros_home / "amp_ros" / ns / "amp_vos" / STATE_FILE).is_file()
                session = VosSession(client, node)
                mask = session.segment(square(1))
                assert (mask.height, mask.width) == (HEIGHT, WIDTH)
                values = session.diagnostics_now()
                assert values["classes"] == f"background,object,{labels[ns]}", (ns, values)
        finally:
            for node in nodes.values():
                stop_cleanly(node)


def _demo_jpeg(index: int) -> bytes:
    """A real camera JPEG: frame ``index`` of the demo clip re-encoded by OpenCV (854×480)."""
    frame = cv2.imread(str(DEMO_FRAMES / f"{index:05d}.jpg"), cv2.IMREAD_COLOR)
    assert frame is not None, DEMO_FRAMES
    ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return data.tobytes()


def compressed_msg(data: bytes, stamp: int, format: str = "jpeg") -> CompressedImage:
    msg = CompressedImage(format=format)
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
    msg.header.frame_id = "camera"
    msg.data = data
    return msg


def test_compressed_jpeg_input_with_a_qos_override(tiny_checkpoint: Path, tmp_path: Path) -> None:
    """image_transport:=compressed with ~/image remapped to /camera/image_raw: the node subscribes
    to /camera/image_raw/compressed (reliable, set by a qos_overrides parameter), segments real
    JPEG frames at their size, rejects a corrupt one and serves the next."""
    topic = "/camera/image_raw/compressed"
    override = f"qos_overrides.{topic}.subscription.reliability"
    with RosClient(DOMAIN_COMPRESSED) as client:
        node = NodeProcess(domain_id=DOMAIN_COMPRESSED, log_path=tmp_path / "node.log",
                           remap={"~/image": "/camera/image_raw"}, image_transport="compressed",
                           checkpoint=str(tiny_checkpoint), state_dir=str(tmp_path / "state"),
                           diagnostics_period=0.2, **{override: "reliable"}).start()
        try:
            node.wait_ready(client)
            session = VosSession(client, node)
            reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
            publisher = client.node.create_publisher(CompressedImage, topic, reliable)
            client.wait_for_subscriber(publisher)
            (info,) = client.node.get_subscriptions_info_by_topic(topic)
            assert info.qos_profile.reliability == ReliabilityPolicy.RELIABLE
            flow_topic = f"{node.fqn}/flow"  # created after the camera's: wait for it in the graph
            wait_until(lambda: client.node.count_subscribers(flow_topic) > 0, "the flow subscription", node)
            (flow,) = client.node.get_subscriptions_info_by_topic(flow_topic)
            assert flow.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT  # not overridden
            response = client.call(f"{node.fqn}/get_parameters", GetParameters.Request(names=[override]),
                                   GetParameters)
            assert [parameter_value_to_python(v) for v in response.values] == ["reliable"]

            def segment(data: bytes) -> Image:
                stamp = session.next_stamp()
                deadline = time.monotonic() + 30.0
                while True:  # re-published if a best-effort message is lost
                    publisher.publish(compressed_msg(data, stamp))
                    found = session.masks.wait_for(lambda m: stamp_ns(m) == stamp, 3.0)
                    if found is not None:
                        return found
                    assert time.monotonic() < deadline, node.log()[-3000:]

            for index in range(2):
                mask = segment(_demo_jpeg(index))
                assert (mask.height, mask.width, mask.encoding) == (480, 854, "mono8")
                assert set(np.unique(pixels(mask))) <= {0, 255}
            before = int(session.diagnostics_now()["inputs_rejected"])
            corrupt = b"\xff\xd8 not a JPEG after all" * 40
            deadline = time.monotonic() + 30.0
            while True:
                publisher.publish(compressed_msg(corrupt, session.next_stamp()))
                try:
                    session.diagnostics_now(lambda v: int(v["inputs_rejected"]) > before, timeout=2.0)
                    break
                except AssertionError:
                    assert time.monotonic() < deadline, node.log()[-3000:]
            assert node.wait_for_log("frame rejected: could not decode"), node.log()
            assert segment(_demo_jpeg(3)).width == 854
        finally:
            stop_cleanly(node)
