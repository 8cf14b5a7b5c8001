"""amp-bag replay with real rclpy: a stand-in segmentation node in a subprocess echoes masks.

Isolation: this run's ROS_DOMAIN_ID "replay" (ros_domains.py), localhost-only
discovery, topics unique to this process, amp_ros's Fast DDS shared-memory profile; each test
uses its own rclpy Context and shuts it down, and kills its subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import rclpy  # a hard dependency: missing ROS wheels must fail, not skip
from rclpy.context import Context
from ros_domains import domain

from amp_ros.bag import read_frames, write_bag
from amp_ros.bag.write import SourceFrame
from amp_ros.ros.dds_env import dds_variables, fastdds_profile
from amp_ros.ros.replay import (
    ReplayError,
    ReplayTimeoutError,
    replay_bag,
)

ROOT = Path(__file__).resolve().parents[1]
H, W, N = 48, 64, 6
PREFIX = f"/test_replay_{os.getpid()}"
TOPICS = {
    "image_topic": f"{PREFIX}/image",
    "flow_topic": f"{PREFIX}/flow",
    "mask_topic": f"{PREFIX}/mask",
}

# Stands in for the amp_vos node: answers every image with a mono8 mask (255 where red > 127)
# carrying the image's header; skips the frame numbered argv[4] (-1: none); takes the flow.
ECHO_NODE = textwrap.dedent(
    """
    import sys

    import numpy as np
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions
    from sensor_msgs.msg import Image

    image_topic, flow_topic, mask_topic = sys.argv[1:4]
    skip = int(sys.argv[4])
    context = Context()
    # SIGTERM shuts the context down cleanly (else Fast DDS leaves its segments in /dev/shm).
    rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.ALL)
    node = rclpy.create_node("echo_vos", context=context)
    publisher = node.create_publisher(Image, mask_topic, 10)
    seen = [0]

    def on_image(msg):
        index = seen[0]
        seen[0] += 1
        if index == skip:
            return
        rows = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.step)
        rgb = rows[:, : msg.width * 3].reshape(msg.height, msg.width, 3)
        mask = np.where(rgb[:, :, 0] > 127, 255, 0).astype(np.uint8)
        out = Image(header=msg.header, height=msg.height, width=msg.width, encoding="mono8",
                    is_bigendian=0, step=msg.width)
        out.data = mask.tobytes()
        publisher.publish(out)

    node.create_subscription(Image, image_topic, on_image, 10)
    node.create_subscription(Image, flow_topic, lambda msg: None, 10)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        if context.ok():
            rclpy.shutdown(context=context)
    """
)


@pytest.fixture(autouse=True)
def ros_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process's ROS domain, localhost discovery and the SHM profile (before rclpy.init)."""
    monkeypatch.setenv("ROS_DOMAIN_ID", str(domain("replay")))
    profile = fastdds_profile()
    assert profile is not None and profile.parent == ROOT / "config"
    for key, value in dds_variables().items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def bag(tmp_path: Path, make_frame: Callable[..., np.ndarray]) -> Path:
    """A bag "walk" of N textured frames named f00..f05, with DIS flow."""
    frames = [SourceFrame(f"f{t:02d}", make_frame(H, W, seed=3, shift=(t, t))) for t in range(N)]
    return write_bag(tmp_path / "walk", frames, sequence="walk", source="test", flow="dis").path


@pytest.fixture
def echo_node(tmp_path: Path) -> Iterator[Callable[[int], subprocess.Popen[bytes]]]:
    """Factory starting the echo node (skipping one frame index, -1 for none); always killed."""
    script = tmp_path / "echo_node.py"
    script.write_text(ECHO_NODE)
    started: list[subprocess.Popen[bytes]] = []

    def start(skip: int = -1) -> subprocess.Popen[bytes]:
        args = [sys.executable, str(script), *TOPICS.values()]
        proc = subprocess.Popen([*args, str(skip)], cwd=ROOT, env=dict(os.environ))
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def context() -> Iterator[Context]:
    """An initialised rclpy Context, shut down after the test."""
    ctx = Context()
    rclpy.init(context=ctx)
    try:
        yield ctx
    finally:
        if ctx.ok():
            rclpy.shutdown(context=ctx)


def _expected_mask(rgb: np.ndarray) -> np.ndarray:
    return np.where(rgb[:, :, 0] > 127, 255, 0).astype(np.uint8)


def test_lockstep_gets_every_mask_in_order_and_writes_results(
    bag: Path, tmp_path: Path, echo_node: Callable[[int], object], context: Context
) -> None:
    echo_node(-1)
    received: list[str] = []
    stats = replay_bag(
        bag,
        lockstep=True,
        results_dir=tmp_path / "results",
        record=tmp_path / "masks",
        timeout=20.0,
        context=context,
        on_mask=lambda name, stamp, mask: received.append(name),
        **TOPICS,
    )
    frames = list(read_frames(bag))
    names = [f.name for f in frames]
    assert received == names
    assert (stats.frames_sent, stats.masks_received, stats.missing) == (N, N, [])
    assert [f.name for f in stats.frames] == names
    assert [f.stamp_ns for f in stats.frames] == [f.stamp_ns for f in frames]
    assert len(stats.latencies_s) == N and all(0 < lat < 20 for lat in stats.latencies_s)
    assert stats.sequence == "walk" and "6/6 masks" in stats.summary()
    for frame in frames:
        png = cv2.imread(str(tmp_path / "results" / "walk" / f"{frame.name}.png"), -1)
        np.testing.assert_array_equal(png, _expected_mask(frame.rgb))
    recorded = list(read_frames(tmp_path / "masks", image_topic=TOPICS["mask_topic"]))
    assert [r.name for r in recorded] == names
    assert [r.stamp_ns for r in recorded] == [f.stamp_ns for f in frames]
    np.testing.assert_array_equal(recorded[2].rgb[:, :, 0], _expected_mask(frames[2].rgb))
    assert context.ok()  # the caller's context is left for the caller to shut down


def test_rate_mode_with_a_private_context(
    bag: Path, tmp_path: Path, echo_node: Callable[[int], object]
) -> None:
    echo_node(-1)
    stats = replay_bag(bag, rate=4.0, results_dir=tmp_path / "res", timeout=20.0, **TOPICS)
    assert stats.frames_sent == N
    assert stats.masks_received == N  # the echo keeps up with 96 frames/s of 64×48
    assert stats.wall_s >= (N - 1) / 24 / 4
    assert len(list((tmp_path / "res" / "walk").glob("*.png"))) == N


def test_lockstep_times_out_naming_the_frame(
    bag: Path, echo_node: Callable[[int], object], context: Context
) -> None:
    echo_node(2)
    with pytest.raises(ReplayTimeoutError, match=r"no mask on .* for frame 'f02' \(stamp 17"):
        replay_bag(bag, lockstep=True, timeout=5.0, context=context, **TOPICS)


def test_no_subscriber_is_a_clear_error(bag: Path, context: Context) -> None:
    topics = {**TOPICS, "image_topic": f"{PREFIX}/nobody_listens"}
    with pytest.raises(ReplayError, match=r"no subscriber on .*nobody_listens.* after 1 s"):
        replay_bag(bag, lockstep=True, connect_timeout=1.0, context=context, **topics)


def test_in_process_node_spun_by_the_replay(bag: Path, context: Context) -> None:
    """An evaluator can hand its own node to replay_bag (extra_nodes) in one thread."""
    from sensor_msgs.msg import Image

    topics = {key: value.replace(PREFIX, f"{PREFIX}_inproc") for key, value in TOPICS.items()}
    node = rclpy.create_node("inproc_vos", context=context)
    publisher = node.create_publisher(Image, topics["mask_topic"], 10)
    flows: list[int] = []

    def on_image(msg: Image) -> None:
        publisher.publish(
            Image(header=msg.header, height=msg.height, width=msg.width, encoding="mono8",
                  step=msg.width, data=bytes(msg.height * msg.width))
        )  # fmt: skip

    node.create_subscription(Image, topics["image_topic"], on_image, 10)
    node.create_subscription(Image, topics["flow_topic"], lambda msg: flows.append(msg.width), 10)
    try:
        stats = replay_bag(bag, lockstep=True, timeout=10.0, context=context, extra_nodes=[node],
                           **topics)  # fmt: skip
    finally:
        node.destroy_node()
    assert stats.masks_received == N
    assert len(flows) >= N - 1 and set(flows) == {W}  # the bag's flow went out too


@pytest.mark.parametrize("transport", ["raw", "compressed"])
def test_compressed_bag_replays_like_a_raw_one(
    tmp_path: Path, make_frame: Callable[..., np.ndarray], context: Context, transport: str
) -> None:
    """A bag of PNG CompressedImages replays frame for frame like its raw frames, sent as rgb8
    Images or (transport="compressed") as CompressedImages on <image topic>/compressed."""
    from sensor_msgs.msg import CompressedImage, Image

    from amp_ros.image_codec import decode_compressed, image_to_rgb

    rgbs = [make_frame(H, W, seed=5, shift=(t, 0)) for t in range(N)]
    frames = [SourceFrame(f"c{t:02d}", rgb) for t, rgb in enumerate(rgbs)]
    bag = write_bag(tmp_path / "packed", frames, sequence="packed", source="test",
                    image_format="png").path  # fmt: skip
    topics = {key: value.replace(PREFIX, f"{PREFIX}_{transport}") for key, value in TOPICS.items()}
    node = rclpy.create_node(f"packed_vos_{transport}", context=context)
    publisher = node.create_publisher(Image, topics["mask_topic"], 10)
    formats: list[str] = []

    def on_frame(msg: Image | CompressedImage) -> None:
        if transport == "compressed":
            formats.append(msg.format)
            rgb = decode_compressed(msg.format, bytes(msg.data))
        else:
            rgb = image_to_rgb(msg)
        mask = _expected_mask(rgb)
        publisher.publish(Image(header=msg.header, height=mask.shape[0], width=mask.shape[1],
                                encoding="mono8", step=mask.shape[1], data=mask.tobytes()))  # fmt: skip

    if transport == "compressed":
        node.create_subscription(CompressedImage, topics["image_topic"] + "/compressed", on_frame, 10)
    else:
        node.create_subscription(Image, topics["image_topic"], on_frame, 10)
    masks: dict[str, np.ndarray] = {}
    try:
        stats = replay_bag(bag, lockstep=True, timeout=10.0, context=context, extra_nodes=[node],
                           transport=transport, on_mask=lambda name, _, m: masks.setdefault(name, m),
                           **topics)  # fmt: skip
    finally:
        node.destroy_node()
    assert (stats.frames_sent, stats.masks_received) == (N, N)
    assert list(masks) == [f.name for f in frames]
    for frame in frames:
        np.testing.assert_array_equal(masks[frame.name], _expected_mask(frame.rgb))
    assert formats == (["rgb8; png compressed bgr8"] * N if transport == "compressed" else [])
    with pytest.raises(ValueError, match=r"transport must be one of \['raw', 'compressed'\]"):
        replay_bag(bag, transport="theora", context=context, **topics)
