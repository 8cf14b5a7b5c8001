"""The ``amp_vos`` node's callbacks in this process: failures answered, counted and reported.

A :class:`~amp_ros.ros.node.VosNode` on a private Context (this run's ROS domain "node_callbacks"),
not spun: the tests call its callbacks directly and make the pipeline fail on purpose (as a GPU
out of memory would), which a node in a subprocess cannot be made to do.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import rclpy
import torch
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.context import Context
from rclpy.parameter import Parameter
from ros_domains import domain
from sensor_msgs.msg import CompressedImage, Image
from std_srvs.srv import Trigger

from amp_interfaces.srv import Forget, Teach
from amp_ros.ros import node as node_module
from amp_ros.ros.dds_env import dds_variables_applied
from amp_ros.ros.messages import image_msg
from amp_ros.ros.node import VosNode
from amp_ros.ros.node_config import torch_threads

DOMAIN = domain("node_callbacks")
HEIGHT, WIDTH = 48, 64


def frame(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)


def mask() -> np.ndarray:
    out = np.zeros((HEIGHT, WIDTH), np.uint8)
    out[10:30, 20:40] = 255
    return out


def teach_request(label: str = "cup") -> Teach.Request:
    return Teach.Request(label=label, image=image_msg(frame(), "rgb8"), mask=image_msg(mask(), "mono8"))


OUT_OF_MEMORY = "CUDA out of memory. Tried to allocate 2.00 GiB"


def out_of_memory(*_args: object, **_kwargs: object) -> None:
    raise RuntimeError(OUT_OF_MEMORY)


def values_of(status: DiagnosticStatus) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


@pytest.fixture
def make_node(tiny_checkpoint: Path, tmp_path: Path) -> Iterator[Callable[..., VosNode]]:
    """Factory ``make_node(name=None, **parameters)`` → a VosNode (tiny checkpoint, own state_dir)."""
    made: list[tuple[Context, VosNode]] = []

    def make(name: str | None = None, namespace: str | None = None, **parameters: object) -> VosNode:
        context = Context()
        rclpy.init(context=context, domain_id=DOMAIN)
        values = {"checkpoint": str(tiny_checkpoint), "state_dir": str(tmp_path / "state"), **parameters}
        kwargs: dict[str, object] = {
            "context": context, "parameter_overrides": [Parameter(k, value=v) for k, v in values.items()]
        }
        if name is not None:
            kwargs["cli_args"] = ["--ros-args", "-r", f"__node:={name}"]
        if namespace is not None:
            kwargs["namespace"] = namespace
        node = VosNode(**kwargs)
        made.append((context, node))
        return node

    threads = torch.get_num_threads()  # a node sets torch's threads for the whole process
    with dds_variables_applied():
        yield make
        for context, node in made:
            node.destroy_node()
            context.try_shutdown()
    torch.set_num_threads(threads)


def test_threads_zero_leaves_one_core_to_receive_frames(make_node: Callable[..., VosNode]) -> None:
    """threads 0: torch gets one thread fewer than the usable cores, at least one, unless
    OMP_NUM_THREADS says how many (then torch's own choice stands); a positive value is taken
    as given."""
    assert [torch_threads(0, cores) for cores in (1, 2, 8)] == [1, 1, 7]
    assert torch_threads(0, 8, "4") is None and torch_threads(0, 8, "") == 7
    assert torch_threads(3, 8) == 3 and torch_threads(3, 1) == 3 and torch_threads(3, 8, "1") == 3
    before = torch.get_num_threads()
    make_node()
    automatic = torch_threads(0, len(os.sched_getaffinity(0)), os.environ.get("OMP_NUM_THREADS"))
    assert torch.get_num_threads() == (before if automatic is None else automatic)
    make_node(threads=2)
    assert torch.get_num_threads() == 2


def test_teach_that_raises_is_answered_with_the_error(
    make_node: Callable[..., VosNode], capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected exception in teach (GPU out of memory): success=false with the error's type
    and message, the traceback logged once; the next teach works."""
    node = make_node()
    capfd.readouterr()
    with monkeypatch.context() as patch:
        patch.setattr(node.pipeline, "teach", out_of_memory)
        response = node.on_teach(teach_request(), Teach.Response())
    assert not response.success and response.class_id == -1
    assert response.message == "teach failed: RuntimeError: " + OUT_OF_MEMORY
    err = capfd.readouterr().err
    assert err.count("Traceback") == 1 and "teach failed" in err and "out_of_memory" in err, err
    again = node.on_teach(teach_request(), Teach.Response())
    assert again.success, again.message


@pytest.mark.parametrize("service", ["forget", "reset"])
def test_forget_and_reset_that_raise_are_answered(
    make_node: Callable[..., VosNode], capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    service: str,
) -> None:
    """forget and reset: an unexpected exception is a reply with success=false, not a dead node."""
    node = make_node()
    assert node.on_teach(teach_request(), Teach.Response()).success
    capfd.readouterr()
    monkeypatch.setattr(node.pipeline, service, out_of_memory)
    if service == "forget":
        response = node.on_forget(Forget.Request(label="cup"), Forget.Response())
    else:
        response = node.on_reset(Trigger.Request(), Trigger.Response())
    assert not response.success
    assert response.message == f"{service} failed: RuntimeError: " + OUT_OF_MEMORY
    assert capfd.readouterr().err.count("Traceback") == 1


def test_a_kept_frame_is_taught_with_the_flow_it_was_seen_with(
    make_node: Callable[..., VosNode], tiny_checkpoint: Path
) -> None:
    """Teach by stamp of a kept frame that is not the newest: the class is taught on the frame as
    the network saw it, its flow included (the same proxies as a pipeline given that frame's
    ``small_flow``); the first frame, seen without flow, is kept without."""
    from amp_ros.pipeline import Pipeline

    node = make_node()
    moving = [np.roll(frame(), 3 * index, axis=1) for index in range(3)]
    for index, image in enumerate(moving):
        node.on_image(image_msg(image, "rgb8", stamp_ns=index + 1))
        processed = str(index + 1)
        wait_until(lambda done=processed: values_of(node.diagnostic_status())["frames_processed"] == done)
    assert node._kept[0].flow is None and node._kept[1].flow is not None
    request = Teach.Request(label="cup", mask=image_msg(mask(), "mono8", stamp_ns=2))
    response = node.on_teach(request, Teach.Response())
    assert response.success, response.message
    reference = Pipeline.from_checkpoint(tiny_checkpoint)
    for image in moving[:2]:
        seen = reference.step(image)
    reference.teach("cup", mask(), moving[1], seen.small_flow)
    taught, expected = node.pipeline.taught_state(), reference.taught_state()
    for mine, theirs in zip(taught.objects.weights, expected.objects.weights):
        assert torch.equal(mine, theirs)


def test_failing_frames_are_counted_and_diagnostics_say_error(
    make_node: Callable[..., VosNode], capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A frame whose processing raises is counted (frames_failed), logged with its traceback, and
    /diagnostics reports ERROR; the worker keeps serving."""
    node = make_node()
    status = node.diagnostic_status()
    assert (status.level, status.message) == (DiagnosticStatus.OK, "running")
    with monkeypatch.context() as patch:
        patch.setattr(node.pipeline, "step", out_of_memory)
        node.on_image(image_msg(frame(), "rgb8", stamp_ns=1))
        wait_until(lambda: node.diagnostic_status().level == DiagnosticStatus.ERROR)
    status = node.diagnostic_status()
    values = values_of(status)
    assert values["frames_failed"] == "1" and "frames failing" in status.message
    err = capfd.readouterr().err
    assert "frame failed" in err and "Traceback" in err, err
    node.on_image(image_msg(frame(1), "rgb8", stamp_ns=2))  # the worker is still alive
    wait_until(lambda: values_of(node.diagnostic_status())["frames_processed"] == "1")


def test_diagnostics_warn_on_stale_input_and_dropped_frames(
    make_node: Callable[..., VosNode], monkeypatch: pytest.MonkeyPatch
) -> None:
    """WARN when no frame came for STALE_AFTER seconds, and when frames were dropped recently."""
    node = make_node(flow_source="topic")
    assert node.diagnostic_status().level == DiagnosticStatus.OK
    with monkeypatch.context() as patch:
        patch.setattr(node_module, "STALE_AFTER", 0.0)
        status = node.diagnostic_status()
        assert status.level == DiagnosticStatus.WARN and status.message.startswith("no frame for"), status
    for stamp in range(1, 12):  # frames waiting for flow that never comes: the pairer drops one
        node.on_image(image_msg(frame(), "rgb8", stamp_ns=stamp * 10**8))
    status = node.diagnostic_status()
    assert (status.level, status.message) == (DiagnosticStatus.WARN, "frames dropped"), status


def test_diagnostics_warn_when_fps_is_below_the_input_rate(
    make_node: Callable[..., VosNode], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Frames at 20 Hz into a pipeline that takes 0.2 s each: WARN "fps … below the input rate"
    (with the input rate and fps among the values)."""
    node = make_node()
    step = node.pipeline.step

    def slow_step(*args: object, **kwargs: object) -> object:
        time.sleep(0.2)
        return step(*args, **kwargs)

    monkeypatch.setattr(node.pipeline, "step", slow_step)
    start = time.monotonic()
    for index in range(30):  # 1.5 s at 20 Hz
        node.on_image(image_msg(frame(index % 3), "rgb8", stamp_ns=index + 1))
        time.sleep(max(0.0, start + (index + 1) / 20 - time.monotonic()))
    status = node.diagnostic_status()
    values = values_of(status)
    assert status.level == DiagnosticStatus.WARN and "below the input rate" in status.message, status
    assert float(values["input_fps"]) > 10 and float(values["fps"]) < 9, values


def test_diagnostics_status_is_named_after_the_node(make_node: Callable[..., VosNode]) -> None:
    """The status name is "<fully qualified node name>: segmentation" (diagnostic_updater's
    convention with use_fqn), so two nodes (renamed, or in two namespaces) are told apart."""
    assert make_node().diagnostic_status().name == "/amp_vos: segmentation"
    assert make_node("front_camera_vos").diagnostic_status().name == "/front_camera_vos: segmentation"
    assert make_node(namespace="/cam1").diagnostic_status().name == "/cam1/amp_vos: segmentation"


def raw_image(encoding: str, height: int, width: int, bytes_per_pixel: int) -> Image:
    msg = Image(height=height, width=width, encoding=encoding, step=width * bytes_per_pixel)
    msg.data = bytes(height * width * bytes_per_pixel)
    return msg


def test_each_kind_of_rejection_is_logged_and_counted(
    make_node: Callable[..., VosNode], capfd: pytest.CaptureFixture[str]
) -> None:
    """Rejections are throttled per kind: a flood of oversized frames does not hide a bad
    encoding or a bad flow field; every rejection is counted."""
    node = make_node(max_image_pixels=HEIGHT * WIDTH, flow_source="topic")
    capfd.readouterr()
    for _ in range(5):
        node.on_image(raw_image("rgb8", HEIGHT + 1, WIDTH, 3))
    node.on_image(raw_image("32FC1", HEIGHT, WIDTH, 4))
    node.on_flow(raw_image("32FC1", HEIGHT, WIDTH, 4))
    node.on_image(raw_image("rgb8", HEIGHT + 2, WIDTH, 3))  # the first kind again: still throttled
    err = capfd.readouterr().err
    assert err.count("exceeds max_image_pixels") == 1, err
    assert err.count("frame rejected") == 2 and "'32FC1' is not a colour encoding" in err, err
    assert err.count("flow rejected: flow encoding must be 32FC2") == 1, err
    assert values_of(node.diagnostic_status())["inputs_rejected"] == "8"


def test_state_of_another_network_is_set_aside_not_overwritten(
    make_node: Callable[..., VosNode], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Taught classes saved with another network (other feature channels): the node says they
    were not restored and moves the file aside, so the next teach does not destroy them."""
    from amp_ros.checkpoint import InputConfig, save_checkpoint
    from amp_ros.class_store import STATE_FILE, ClassStore
    from amp_ros.network import build_heads, two_stream_network
    from amp_ros.pipeline import Pipeline

    network = two_stream_network(width=0.125, group_blocks=(1, 1, 1)).eval()
    other = save_checkpoint(tmp_path / "other", network, build_heads(network), InputConfig(max_side=64), {})
    pipeline = Pipeline.from_checkpoint(other)
    pipeline.teach("cup", mask(), frame())
    state_dir = tmp_path / "other_state"
    ClassStore(state_dir).save(pipeline.taught_state())
    saved = (state_dir / STATE_FILE).read_bytes()

    capfd.readouterr()
    node = make_node(state_dir=str(state_dir))
    err = capfd.readouterr().err
    assert "taught classes not restored" in err and "different network" in err and "moved it to" in err, err
    (aside,) = state_dir.glob(f"{STATE_FILE}.not-restored-*")
    assert aside.read_bytes() == saved
    assert node.on_teach(teach_request("box"), Teach.Response()).success
    assert aside.read_bytes() == saved and (state_dir / STATE_FILE).read_bytes() != saved


def test_default_state_dir_is_per_node_under_ros_home(
    make_node: Callable[..., VosNode], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """state_dir empty: $ROS_HOME/amp_ros/<namespace>/<name>, one per node; a state file at the
    old shared default is pointed out (not used, not touched)."""
    from amp_ros.class_store import STATE_FILE

    monkeypatch.setenv("ROS_HOME", str(tmp_path / "ros_home"))
    legacy = tmp_path / "ros_home" / "amp_ros" / STATE_FILE
    legacy.parent.mkdir(parents=True)
    legacy.write_bytes(b"taught before")
    capfd.readouterr()
    plain, cam1 = make_node(state_dir=""), make_node(state_dir="", namespace="/cam1")
    assert "old shared default" in capfd.readouterr().err
    for node in (plain, cam1):
        assert node.on_teach(teach_request(), Teach.Response()).success
    assert (tmp_path / "ros_home" / "amp_ros" / "amp_vos" / STATE_FILE).is_file()
    assert (tmp_path / "ros_home" / "amp_ros" / "cam1" / "amp_vos" / STATE_FILE).is_file()
    assert legacy.read_bytes() == b"taught before"


def _declaring(data: bytes, width: int, height: int) -> bytes:
    """A PNG or JPEG whose header declares width×height (the pixels stay as they were)."""
    patched = bytearray(data)
    if data.startswith(b"\x89PNG"):
        patched[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    else:
        sof = data.index(b"\xff\xc0")
        patched[sof + 5:sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(patched)


@pytest.mark.parametrize("extension", [".png", ".jpg"])
def test_compressed_frame_declaring_too_many_pixels_is_refused_before_decoding(
    make_node: Callable[..., VosNode], monkeypatch: pytest.MonkeyPatch, extension: str
) -> None:
    """A small PNG/JPEG whose header announces 30000×30000 pixels (a decompression bomb) is
    rejected from its header, never decoded; the same file with its true size is decoded."""
    node = make_node(max_image_pixels=HEIGHT * WIDTH, image_transport="compressed")
    decoded = []
    decode = node_module.decode_compressed
    monkeypatch.setattr(node_module, "decode_compressed", lambda *args: decoded.append(args) or decode(*args))
    ok, encoded = cv2.imencode(extension, frame())
    assert ok
    bomb = CompressedImage(format=extension[1:], data=_declaring(encoded.tobytes(), 30000, 30000))
    node.on_compressed(bomb)
    assert not decoded and values_of(node.diagnostic_status())["inputs_rejected"] == "1"
    node.on_compressed(CompressedImage(format=extension[1:], data=encoded.tobytes()))
    assert len(decoded) == 1 and values_of(node.diagnostic_status())["inputs_rejected"] == "1"
    wait_until(lambda: values_of(node.diagnostic_status())["frames_processed"] == "1")


def test_counters_are_exact_under_concurrent_updates(
    make_node: Callable[..., VosNode], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rejections counted from several threads at once (input callbacks, worker): none is lost."""
    node = make_node()
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        def reject_many() -> None:
            for _ in range(2000):
                node._reject("frame rejected: test")

        threads = [threading.Thread(target=reject_many) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(previous)
    assert values_of(node.diagnostic_status())["inputs_rejected"] == "8000"


def test_teach_client_parses_stamps_as_ros_prints_them() -> None:
    """amp-teach --stamp takes seconds with up to nine decimals (exactly, no float rounding)."""
    import argparse

    from amp_ros.ros.teach_client import parse_stamp

    assert parse_stamp("1700000000.033333333") == 1_700_000_000_033_333_333
    assert parse_stamp("12") == 12_000_000_000 and parse_stamp("12.5") == 12_500_000_000
    for bad in ("", "-1", "1.2.3", "1e9", "1.0000000001", "abc"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_stamp(bad)
