"""Integration tests of the ``amp_vos`` node: real rclpy, the node in a subprocess, clients here.

Each node process runs on its own localhost-only ROS domain (ros_domains.py: node_*, one per
node) with the shared-memory Fast DDS profile. One module-scoped node serves most tests; the given-flow
(with an unwritable state_dir), restart, corrupt-state and slow-pipeline cases start their own.
Waits are on conditions with deadlines; best-effort frames lost in transport are re-published.
"""

from __future__ import annotations

import itertools
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import rclpy  # noqa: F401  (a hard dependency: a broken install fails here, it is not skipped)
from rcl_interfaces.msg import ParameterType
from rcl_interfaces.srv import DescribeParameters, GetParameters, SetParameters
from rclpy.parameter import Parameter, parameter_value_to_python
from ros_domains import domain
from ros_harness import (
    REPO,
    NodeProcess,
    RosClient,
    VosSession,
    image_msg,
    pixels,
    process_ros_env,
    ros_env,
    stamp_ns,
)
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger

from amp_interfaces.srv import Forget, Teach
from amp_ros.class_store import STATE_FILE
from amp_ros.ros.dds_env import apply_dds_variables
from amp_ros.ros.node_config import PARAMETERS

# Fast DDS reads its profile file once per process, when the first participant is created, and
# another test module may create one before this module's fixtures run: select the shared-memory
# profile at collection already (without it, 480×640 best-effort frames do not get through).
apply_dds_variables()

DOMAIN_COMMON, DOMAIN_FLOW, DOMAIN_RESTART, DOMAIN_CORRUPT, DOMAIN_SLOW = (
    domain(f"node_{name}") for name in ("common", "flow", "restart", "corrupt", "slow"))
DOMAIN_STOP, DOMAIN_BAD_START, DOMAIN_AUTO_FLOW = (
    domain(f"node_{name}") for name in ("stop", "bad_start", "auto_flow"))
HEIGHT, WIDTH = 120, 160


# --- frames and masks ---------------------------------------------------------------------------


def _background(height: int, width: int) -> np.ndarray:
    """A smooth colour gradient (noise would make the dense CRF needlessly slow)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.stack([xx / width * 120, yy / height * 160, (xx + yy) / (width + height) * 60], -1).astype(
        np.uint8
    )


def moving_square(index: int, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """Frame ``index`` of a red square sliding right over a gradient (H×W×3 uint8 RGB)."""
    frame = _background(height, width)
    side = height // 3
    top, left = height // 3, (width // 8 + index * width // 40) % (width - side)
    frame[top:top + side, left:left + side] = (230, 30, 30)
    return frame


def square_mask(index: int, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """The square of :func:`moving_square` as a 0/255 mask."""
    return np.where((moving_square(index, height, width) == (230, 30, 30)).all(-1), 255, 0).astype(np.uint8)


def corner_mask(height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """A background patch in the top-left corner."""
    mask = np.zeros((height, width), np.uint8)
    mask[: height // 4, : width // 4] = 255
    return mask


def raw_image(encoding: str, height: int, width: int, step: int, size: int) -> Image:
    """An Image with arbitrary (possibly inconsistent) fields and ``size`` bytes of data."""
    msg = Image(height=height, width=width, encoding=encoding, step=step)
    msg.data = bytes(size)
    return msg


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def _ros_environment() -> Iterator[None]:
    with process_ros_env():
        yield


@pytest.fixture(scope="module")
def vos(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VosSession]:
    """The common node (DIS flow, frames up to 120×160) and a client session with it."""
    state_dir = tmp_path_factory.mktemp("vos_state")
    node = NodeProcess(  # config/vos.yaml first: rcl must accept it as it is
        domain_id=DOMAIN_COMMON, log_path=state_dir.parent / "vos_node.log",
        params_file=REPO / "config" / "vos.yaml", checkpoint=str(tiny_checkpoint),
        state_dir=str(state_dir), diagnostics_period=0.2, max_image_pixels=HEIGHT * WIDTH,
    ).start()
    client = RosClient(DOMAIN_COMMON)
    try:
        node.wait_ready(client)
        session = VosSession(client, node, outputs=("mask", "labels", "probability", "overlay"))
        session.segment(moving_square(0))  # discovery done, first frame processed
        yield session
    finally:
        client.close()
        node.stop()


def _started(domain_id: int, log_path: Path, client: RosClient, **parameters: object) -> NodeProcess:
    node = NodeProcess(domain_id=domain_id, log_path=log_path, **parameters).start()
    try:
        node.wait_ready(client)
    except BaseException:
        node.stop()
        raise
    return node


def teach_request(label: str, mask: np.ndarray, frame: np.ndarray | None = None,
                  mask_encoding: str = "mono8") -> Teach.Request:
    """A Teach request; ``frame`` None = an empty image (the node uses its last frame)."""
    request = Teach.Request(label=label, mask=image_msg(mask, mask_encoding))
    if frame is not None:
        request.image = image_msg(frame, "rgb8")
    return request


def labels_after_next_frame(session: VosSession, index: int) -> np.ndarray:
    """The ~/labels image of a new frame."""
    return pixels(session.segment(moving_square(index), output="labels"))


def classes(session: VosSession) -> list[str]:
    """The class names the node reports on /diagnostics (fresh message)."""
    return session.diagnostics_now()["classes"].split(",")


def assert_rejected(session: VosSession, publish: Callable[[], None], timeout: float = 20.0) -> None:
    """``publish`` a bad input until /diagnostics counts one more rejection."""
    before = int(session.diagnostics_now()["inputs_rejected"])
    deadline = time.monotonic() + timeout
    while True:
        publish()
        try:
            session.diagnostics_now(lambda v: int(v["inputs_rejected"]) > before, timeout=2.0)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise


def assert_still_serving(session: VosSession, index: int = 3) -> None:
    """A good frame after a bad input still gets a 0/255 mask of its size and stamp."""
    mask = session.segment(moving_square(index))
    assert (mask.height, mask.width, mask.encoding) == (HEIGHT, WIDTH, "mono8")


# --- 1, 2: masks and DIS flow ---------------------------------------------------------------------


def test_masks_come_back_with_the_frame_stamps(vos: VosSession) -> None:
    """Ten frames of a moving square → ten mono8 0/255 masks of the frame size, same stamps."""
    for index in range(10):
        mask = vos.segment(moving_square(index))
        assert (mask.height, mask.width, mask.encoding) == (HEIGHT, WIDTH, "mono8")
        assert mask.step == WIDTH and not mask.is_bigendian
        assert mask.header.frame_id == "camera"
        assert set(np.unique(pixels(mask))) <= {0, 255}
        stamp = stamp_ns(mask)
        for name in ("probability", "overlay"):  # the other outputs carry the same stamp
            other = vos.outputs[name].wait_for(lambda m, s=stamp: stamp_ns(m) == s, 10.0)
            assert other is not None, f"no ~/{name} for frame {stamp}"
            assert (other.height, other.width) == (HEIGHT, WIDTH)
        probability = pixels(vos.outputs["probability"].wait_for(lambda m, s=stamp: stamp_ns(m) == s, 1.0))
        assert probability.dtype == np.float32 and 0.0 <= probability.min() <= probability.max() <= 1.0


def test_dis_flow_is_used_without_a_flow_topic(vos: VosSession) -> None:
    """flow_source auto and nothing on ~/flow: DIS computes the flow (diagnostics say "dis")."""
    for index in range(2):
        vos.segment(moving_square(index))
    values = vos.diagnostics_now()
    assert values["flow_source"] == "dis"
    assert int(values["frames_processed"]) >= 3


# --- 3: teach, forget, reset --------------------------------------------------------------------


def test_teach_adapt_forget_and_reset(vos: VosSession) -> None:
    """Taught classes show up in ~/labels, re-teaching adapts, forget removes, reset answers."""
    # The tiny checkpoint is randomly initialised: its taught classes are too weak to survive the
    # dense CRF. This test is about the services and ~/labels; test_real_data.py checks teaching
    # on real frames with the CRF.
    assert all(result.successful for result in _set(vos, taught_crf=False))
    try:
        cup = vos.client.call("/amp/teach", teach_request("cup", square_mask(1), moving_square(1)))
        assert cup.success, cup.message
        assert cup.message.startswith("imprinted") and cup.class_id >= 2
        assert (labels_after_next_frame(vos, 2) == cup.class_id).any()
        assert (Path(vos.node.parameters["state_dir"]) / STATE_FILE).is_file()

        vos.segment(moving_square(3))  # the frame an empty teach image refers to
        box = vos.client.call("/amp/teach", teach_request("box", corner_mask()))
        assert box.success, box.message
        assert box.class_id not in (0, 1, cup.class_id)
        assert (labels_after_next_frame(vos, 3) == box.class_id).any()

        again = vos.client.call("/amp/teach", teach_request("cup", square_mask(4), moving_square(4)))
        assert again.success and again.class_id == cup.class_id
        assert "adapted" in again.message

        forgot = vos.client.call("/amp/forget", Forget.Request(label="cup"))
        assert forgot.success, forgot.message
        assert "cup" in forgot.message
        labels = labels_after_next_frame(vos, 5)
        assert not (labels == cup.class_id).any()
        assert classes(vos) == ["background", "object", "box"]

        reset = vos.client.call("/amp/reset", Trigger.Request())
        assert reset.success, reset.message
        assert_still_serving(vos)
        assert classes(vos) == ["background", "object", "box"]  # reset keeps taught classes

        assert vos.client.call("/amp/forget", Forget.Request(label="box")).success
        assert classes(vos) == ["background", "object"]
    finally:
        _set(vos, taught_crf=True)


def _stamp_of(response: Teach.Response) -> int:
    return response.stamp.sec * 1_000_000_000 + response.stamp.nanosec


def test_teach_by_stamp_uses_the_kept_frame_with_the_masks_stamp(vos: VosSession) -> None:
    """An empty image: the mask is applied to the kept frame stamped like the mask, and the reply
    carries that stamp (stamp 0: the newest frame; with an image: the image's stamp). A stamp
    that is not kept (too old, or never seen) is refused with the kept range."""
    stamps = [stamp_ns(vos.segment(moving_square(index))) for index in range(32)]  # 30 are kept
    try:
        on_frame = vos.client.call("/amp/teach", Teach.Request(
            label="cup", mask=image_msg(square_mask(20), "mono8", stamps[20])))
        assert on_frame.success, on_frame.message
        assert _stamp_of(on_frame) == stamps[20] and f"{stamps[20] // 10**9}." in on_frame.message

        newest = vos.client.call("/amp/teach", teach_request("cup", square_mask(31)))
        assert newest.success and _stamp_of(newest) == stamps[31], newest.message

        given = vos.client.call("/amp/teach", Teach.Request(
            label="cup", image=image_msg(moving_square(5), "rgb8", 123_000_000_456),
            mask=image_msg(square_mask(5), "mono8")))
        assert given.success and _stamp_of(given) == 123_000_000_456, given.message

        for missing in (stamps[0], stamps[31] + 1):  # pushed out of the 30 kept / never processed
            refused = vos.client.call("/amp/teach", Teach.Request(
                label="cup", mask=image_msg(square_mask(0), "mono8", missing)))
            assert not refused.success and refused.class_id == -1
            assert "no kept frame is stamped" in refused.message, refused.message
            last = f"{stamps[31] // 10**9}.{stamps[31] % 10**9:09d}"
            assert "the last 30 processed frames, stamped " in refused.message, refused.message
            assert f" … {last};" in refused.message, refused.message

        wrong_size = vos.client.call("/amp/teach", Teach.Request(
            label="cup", mask=image_msg(square_mask(30)[::2, ::2], "mono8", stamps[30])))
        assert not wrong_size.success and "mask has shape (60, 80)" in wrong_size.message
    finally:
        vos.client.call("/amp/forget", Forget.Request(label="cup"))
    assert classes(vos) == ["background", "object"]


# --- 5: bad inputs --------------------------------------------------------------------------------

BAD_FRAMES = {
    "32FC1": raw_image("32FC1", HEIGHT, WIDTH, 4 * WIDTH, 4 * WIDTH * HEIGHT),
    "16UC1": raw_image("16UC1", HEIGHT, WIDTH, 2 * WIDTH, 2 * WIDTH * HEIGHT),
    "short data": raw_image("rgb8", HEIGHT, WIDTH, 3 * WIDTH, 3 * WIDTH * HEIGHT - 7),
    "step too small": raw_image("rgb8", HEIGHT, WIDTH, WIDTH, WIDTH * HEIGHT),
    "no pixels": raw_image("rgb8", 0, 0, 0, 0),
    "too large": raw_image("rgb8", HEIGHT + 1, WIDTH, 3 * WIDTH, 3 * WIDTH * (HEIGHT + 1)),
}


@pytest.mark.parametrize("case", list(BAD_FRAMES))
def test_bad_frame_is_rejected_and_the_next_frame_served(vos: VosSession, case: str) -> None:
    """A malformed or oversized frame is counted as rejected, produces no mask, harms nothing."""
    bad = BAD_FRAMES[case]
    stamp = vos.next_stamp()
    bad.header.stamp.sec, bad.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
    assert_rejected(vos, lambda: vos.image_pub.publish(bad))
    assert_still_serving(vos)
    assert all(stamp_ns(m) != stamp for m in vos.masks.snapshot())


def _bad_teach_requests() -> dict[str, tuple[Teach.Request, str]]:
    frame, mask = moving_square(1), square_mask(1)
    short_mask = image_msg(mask, "mono8")
    short_mask.data = bytes(short_mask.data)[:-5]
    return {
        "mask size": (teach_request("cup", mask[::2, ::2], frame),
                      "mask 0 has shape (60, 80), its frame is (120, 160)"),
        "empty mask": (teach_request("cup", np.zeros_like(mask), frame), "selects no pixel"),
        "mask encoding": (teach_request("cup", np.dstack([mask] * 3), frame, "rgb8"),
                          "mask encoding must be mono8, got 'rgb8'"),
        "mask data": (Teach.Request(label="cup", image=image_msg(frame, "rgb8"), mask=short_mask),
                      "expected step×height"),
        "empty label": (teach_request("", mask, frame), "label must be a non-empty name"),
        "blank label": (teach_request("  ", mask, frame), "label must be a non-empty name"),
        "image encoding": (Teach.Request(label="cup", image=raw_image("16UC1", HEIGHT, WIDTH, 2 * WIDTH,
                                                                       2 * WIDTH * HEIGHT),
                                         mask=image_msg(mask, "mono8")), "not a colour encoding"),
        "image too large": (teach_request("cup", square_mask(1, HEIGHT + 1), moving_square(1, HEIGHT + 1)),
                            f"image {WIDTH}×{HEIGHT + 1} exceeds max_image_pixels {HEIGHT * WIDTH}"),
        "mask too large": (teach_request("cup", square_mask(1, HEIGHT + 1)),
                           f"mask {WIDTH}×{HEIGHT + 1} exceeds max_image_pixels {HEIGHT * WIDTH}"),
        "image without width": (Teach.Request(label="cup", image=raw_image("rgb8", HEIGHT, 0, 0, 0),
                                              mask=image_msg(mask, "mono8")),
                                f"image is 0×{HEIGHT}: give both sizes"),
        "image without height": (Teach.Request(label="cup", image=raw_image("rgb8", 0, WIDTH, 3 * WIDTH, 0),
                                               mask=image_msg(mask, "mono8")),
                                 f"image is {WIDTH}×0: give both sizes"),
    }


@pytest.mark.parametrize("case", list(_bad_teach_requests()))
def test_bad_teach_is_refused_with_a_clear_message(vos: VosSession, case: str) -> None:
    """Every malformed teach request is answered success=false, nothing is added."""
    request, expected = _bad_teach_requests()[case]
    response = vos.client.call("/amp/teach", request)
    assert not response.success
    assert expected in response.message
    assert response.class_id == -1
    assert_still_serving(vos)
    assert classes(vos) == ["background", "object"]


@pytest.mark.parametrize(
    ("label", "expected"),
    [("teapot", "teapot"), ("", "unknown"), ("background", "base class")],
)
def test_forget_unknown_label_is_refused(vos: VosSession, label: str, expected: str) -> None:
    """Forgetting a label the node does not know (or a base class) answers success=false."""
    response = vos.client.call("/amp/forget", Forget.Request(label=label))
    assert not response.success
    assert expected in response.message
    assert_still_serving(vos)


# --- 7: parameters ----------------------------------------------------------------------------------


def _set(vos: VosSession, **values: object) -> list:
    request = SetParameters.Request(
        parameters=[Parameter(name, value=value).to_parameter_msg() for name, value in values.items()]
    )
    return vos.client.call("/amp_vos/set_parameters", request, SetParameters).results


def _get(vos: VosSession, *names: str) -> list:
    response = vos.client.call("/amp_vos/get_parameters", GetParameters.Request(names=list(names)),
                               GetParameters)
    return [parameter_value_to_python(value) for value in response.values]


def test_parameters_change_at_run_time_and_read_only_ones_are_refused(vos: VosSession) -> None:
    """alpha changes at run time; device (read-only), out-of-range and bad choices are refused."""
    (result,) = _set(vos, alpha=0.01)
    assert result.successful, result.reason
    assert _get(vos, "alpha") == [0.01]
    try:
        (result,) = _set(vos, device="cuda")
        assert not result.successful and "read-only" in result.reason
        (result,) = _set(vos, alpha=2.0)
        assert not result.successful
        (result,) = _set(vos, flow_source="camera")
        assert not result.successful and "flow_source" in result.reason
        assert _get(vos, "device", "alpha", "flow_source") == ["cpu", 0.01, "auto"]
        assert_still_serving(vos)
    finally:
        (result,) = _set(vos, alpha=0.001)
        assert result.successful


def test_parameters_are_declared_from_the_settings(vos: VosSession) -> None:
    """Every setting is a parameter with its description, read-only flag and range or choices."""
    names = [item.name for item in PARAMETERS]
    response = vos.client.call("/amp_vos/describe_parameters", DescribeParameters.Request(names=names),
                               DescribeParameters)
    kinds = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
             float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING}
    for item, described in zip(PARAMETERS, response.descriptors, strict=True):
        assert (described.name, described.type) == (item.name, kinds[type(item.default)])
        assert (described.description, described.read_only) == (item.description, item.read_only)
        bounds = (*described.floating_point_range, *described.integer_range)
        ranges = [(r.from_value, r.to_value) for r in bounds]
        if item.choices is not None:
            assert described.additional_constraints == "one of: " + ", ".join(item.choices)
        else:
            assert ranges == ([item.limits] if item.limits is not None else []), item.name


def test_taught_class_settings_change_at_run_time(vos: VosSession) -> None:
    """taught_alpha and taught_crf are run-time parameters; taught_alpha stays within 0..1."""
    assert _get(vos, "taught_alpha", "taught_crf") == [0.003, True]
    try:
        results = _set(vos, taught_alpha=0.05, taught_crf=False)
        assert all(r.successful for r in results), [r.reason for r in results]
        assert _get(vos, "taught_alpha", "taught_crf") == [0.05, False]
        (result,) = _set(vos, taught_alpha=1.5)
        assert not result.successful
        assert_still_serving(vos)
    finally:
        results = _set(vos, taught_alpha=0.003, taught_crf=True)
        assert all(r.successful for r in results)


# --- 8: the amp-teach console client --------------------------------------------------------------


def _teach_cli(image: Path | None, mask: Path, label: str, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "amp_ros.ros.teach_client", "--mask", str(mask), "--label", label,
               *extra]
    if image is not None:
        command += ["--image", str(image)]
    return subprocess.run(command, cwd=REPO, env=ros_env(DOMAIN_COMMON), capture_output=True, text=True,
                          timeout=120, check=False)


def test_teach_client_cli(vos: VosSession, tmp_path: Path) -> None:
    """`python -m amp_ros.ros.teach_client --image PNG --mask PNG --label mug` teaches the node."""
    image, mask, empty = tmp_path / "frame.png", tmp_path / "mask.png", tmp_path / "empty.png"
    cv2.imwrite(str(image), cv2.cvtColor(moving_square(2), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(mask), square_mask(2))
    cv2.imwrite(str(empty), np.zeros((HEIGHT, WIDTH), np.uint8))
    try:
        done = _teach_cli(image, mask, "mug")
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.startswith("ok: imprinted class 'mug'"), done.stdout
        assert "mug" in classes(vos)

        refused = _teach_cli(image, empty, "mug")
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert refused.stdout.startswith("refused:") and "no pixel" in refused.stdout

        stamp = stamp_ns(vos.segment(moving_square(2)))  # without --image: the frame with --stamp
        seconds = f"{stamp // 10**9}.{stamp % 10**9:09d}"
        by_stamp = _teach_cli(None, mask, "mug", "--stamp", seconds)
        assert by_stamp.returncode == 0, by_stamp.stdout + by_stamp.stderr
        assert by_stamp.stdout.startswith("ok: adapted class 'mug'") and seconds in by_stamp.stdout
    finally:
        vos.client.call("/amp/forget", Forget.Request(label="mug"))
    assert classes(vos) == ["background", "object"]


# --- 2b, 5: given flow ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def flow_vos(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VosSession]:
    """A node with flow_source topic (frames wait for a 32FC2 flow field with the same stamp).

    Its state_dir cannot be created (a file is in the way): teaching works, saving fails.
    """
    folder = tmp_path_factory.mktemp("flow_state")
    (folder / "blocker").write_text("a file where the state directory's parent should be")
    state_dir = folder / "blocker" / "state"
    with RosClient(DOMAIN_FLOW) as client:
        node = _started(DOMAIN_FLOW, folder / "flow_node.log", client,
                        checkpoint=str(tiny_checkpoint), state_dir=str(state_dir), diagnostics_period=0.2,
                        flow_source="topic")
        try:
            yield VosSession(client, node)
        finally:
            node.stop()


def _flow(value: float = 1.0, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    flow = np.zeros((height, width, 2), np.float32)
    flow[..., 0] = value
    return flow


def test_given_flow_is_paired_by_stamp(flow_vos: VosSession) -> None:
    """Frames and 32FC2 flow with equal stamps are paired and processed (diagnostics "given")."""
    for index in range(3):
        mask = flow_vos.segment(moving_square(index), _flow(4.0))
        assert (mask.height, mask.width) == (HEIGHT, WIDTH)
    assert flow_vos.diagnostics_now()["flow_source"] == "given"

    dropped = int(flow_vos.diagnostics_now()["frames_dropped"])
    stamp = flow_vos.next_stamp()  # a frame without its flow is never processed alone
    flow_vos.image_pub.publish(image_msg(moving_square(4), "rgb8", stamp))
    flow_vos.segment(moving_square(5), _flow(4.0))
    assert all(stamp_ns(m) != stamp for m in flow_vos.masks.snapshot())
    flow_vos.diagnostics_now(lambda v: int(v["frames_dropped"]) > dropped)  # the pairer dropped it


def _with(value: float) -> np.ndarray:
    flow = _flow()
    flow[HEIGHT // 2, WIDTH // 3, 1] = value
    return flow


BAD_FLOWS = {
    "smaller than the frame": _flow(1.0, HEIGHT // 2, WIDTH // 2),
    "NaN": _with(np.nan),
    "inf": _with(-np.inf),
}


@pytest.mark.parametrize("case", [*BAD_FLOWS, "32FC1"])
def test_bad_flow_is_rejected_and_the_next_pair_served(flow_vos: VosSession, case: str) -> None:
    """A flow field of the wrong shape, encoding or with NaN/inf is rejected; the next pair works."""
    stamp = flow_vos.next_stamp()
    frame = image_msg(moving_square(1), "rgb8", stamp)
    if case == "32FC1":
        flow = image_msg(np.zeros((HEIGHT, WIDTH), np.float32), "32FC1", stamp)
    else:
        flow = image_msg(BAD_FLOWS[case], "32FC2", stamp)

    def publish() -> None:
        flow_vos.flow_pub.publish(flow)
        flow_vos.image_pub.publish(frame)

    assert_rejected(flow_vos, publish)
    flow_vos.segment(moving_square(2), _flow())
    assert all(stamp_ns(m) != stamp for m in flow_vos.masks.snapshot())


def _segment_with_flow(session: VosSession, index: int, flow: np.ndarray, flow_offset_ns: int) -> Image:
    """Publish frame ``index`` and then ``flow`` stamped ``flow_offset_ns`` after it; its mask."""
    stamp = session.next_stamp()
    frame_msg = image_msg(moving_square(index), "rgb8", stamp)
    flow_msg = image_msg(flow, "32FC2", stamp + flow_offset_ns)
    session.client.wait_for_subscriber(session.image_pub)
    deadline = time.monotonic() + 30.0
    while True:  # re-published if a best-effort message is lost
        session.image_pub.publish(frame_msg)
        session.flow_pub.publish(flow_msg)
        found = session.masks.wait_for(lambda m: stamp_ns(m) == stamp, 3.0)
        if found is not None:
            return found
        assert time.monotonic() < deadline, f"no mask for {stamp}; node log:\n{session.node.log()[-3000:]}"


@pytest.mark.parametrize("case", ["stamped 50 ms later", "smaller than the frame"])
def test_unusable_flow_falls_back_to_dis_per_frame(tiny_checkpoint: Path, tmp_path: Path, case: str) -> None:
    """flow_source auto with flow on ~/flow that never pairs (stamps 50 ms off) or does not fit
    the frame: every frame still gets its mask, with DIS flow, and the node says so (throttled)."""
    late = case == "stamped 50 ms later"
    offset, flow = (50_000_000, _flow()) if late else (0, _flow(1.0, HEIGHT // 2, WIDTH))
    with RosClient(DOMAIN_AUTO_FLOW) as client:
        node = _started(DOMAIN_AUTO_FLOW, tmp_path / "node.log", client, checkpoint=str(tiny_checkpoint),
                        state_dir=str(tmp_path / "state"), diagnostics_period=0.2)
        try:
            session = VosSession(client, node)
            for index in range(8):
                mask = _segment_with_flow(session, index, flow, offset)
                assert (mask.height, mask.width) == (HEIGHT, WIDTH)
            assert node.wait_for_log("DIS flow for a frame instead of ~/flow"), node.log()
            values = session.diagnostics_now()
            assert values["flow_source"] == "dis" and int(values["flow_fallbacks"]) >= 1, values
            assert node.log().count("DIS flow for a frame instead") < 8, node.log()  # throttled
        finally:
            node.stop()


def test_unwritable_state_dir_teaches_without_saving(flow_vos: VosSession) -> None:
    """Teach and forget take effect and say that the change was not saved; the node serves on."""
    taught = flow_vos.client.call("/amp/teach", teach_request("cup", square_mask(1), moving_square(1)))
    assert taught.success and taught.message.startswith("imprinted class 'cup'")
    assert "NOT saved" in taught.message and "cannot write" in taught.message
    assert flow_vos.node.wait_for_log("taught classes not saved")
    assert classes(flow_vos) == ["background", "object", "cup"]
    flow_vos.segment(moving_square(2), _flow())
    forgot = flow_vos.client.call("/amp/forget", Forget.Request(label="cup"))
    assert forgot.success and "NOT saved" in forgot.message
    assert classes(flow_vos) == ["background", "object"]


# --- 4: persistence ---------------------------------------------------------------------------------


def test_taught_classes_survive_a_restart(tiny_checkpoint: Path, tmp_path: Path) -> None:
    """Teach, stop the node (cleanly), start it on the same state_dir: the class is back."""
    state_dir = tmp_path / "state"
    parameters = {"checkpoint": str(tiny_checkpoint), "state_dir": str(state_dir), "diagnostics_period": 0.2}
    with RosClient(DOMAIN_RESTART) as client:
        first = _started(DOMAIN_RESTART, tmp_path / "first.log", client, **parameters)
        try:
            early = client.call("/amp/teach", teach_request("cup", square_mask(1)))
            assert not early.success and "no frame" in early.message  # empty image, no frame yet
            taught = client.call("/amp/teach", teach_request("cup", square_mask(1), moving_square(1)))
            assert taught.success, taught.message
        finally:
            code = first.stop()
        assert code == 0, first.log()
        assert (state_dir / STATE_FILE).is_file()
        teach_client = client.service_client("/amp/teach")
        deadline = time.monotonic() + 15.0
        while teach_client.service_is_ready():  # the old server has left the graph
            assert time.monotonic() < deadline, "the stopped node's service is still advertised"
            time.sleep(0.1)

        second = _started(DOMAIN_RESTART, tmp_path / "second.log", client, **parameters)
        try:
            assert second.wait_for_log("taught classes ['cup']"), second.log()
            session = VosSession(client, second, outputs=("mask", "labels"))
            assert classes(session) == ["background", "object", "cup"]
            assert (labels_after_next_frame(session, 1) == taught.class_id).any()
        finally:
            assert second.stop() == 0, second.log()


def test_corrupt_state_file_is_set_aside(tiny_checkpoint: Path, tmp_path: Path) -> None:
    """A garbage state file: the node logs an error, moves the file aside and serves frames."""
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    garbage = b"\x00\xffnot a safetensors file" * 10
    (state_dir / STATE_FILE).write_bytes(garbage)
    with RosClient(DOMAIN_CORRUPT) as client:
        node = _started(DOMAIN_CORRUPT, tmp_path / "node.log", client, checkpoint=str(tiny_checkpoint),
                        state_dir=str(state_dir), diagnostics_period=0.2)
        try:
            assert node.wait_for_log("taught classes not restored"), node.log()
            assert "[ERROR]" in node.log()
            aside = list(state_dir.glob(f"{STATE_FILE}.corrupt-*"))
            assert len(aside) == 1 and aside[0].read_bytes() == garbage
            assert not (state_dir / STATE_FILE).exists()
            session = VosSession(client, node)
            mask = session.segment(moving_square(0))
            assert (mask.height, mask.width) == (HEIGHT, WIDTH)
            assert classes(session) == ["background", "object"]
        finally:
            node.stop()


# --- 6: a slow pipeline drops stale frames ----------------------------------------------------------


def test_slow_pipeline_drops_stale_frames_and_latency_stays_bounded(
    tiny_checkpoint: Path, tmp_path: Path
) -> None:
    """30 Hz 480×640 frames into a pipeline slower than 33 ms: drops counted, no queue builds up."""
    height, width = 480, 640
    frames = [moving_square(i, height, width) for i in range(8)]
    with RosClient(DOMAIN_SLOW) as client:
        # Real work: a 240-px network input and 60 mean-field iterations at 180×240 (≈0.2–0.5 s).
        node = _started(DOMAIN_SLOW, tmp_path / "node.log", client, checkpoint=str(tiny_checkpoint),
                        state_dir=str(tmp_path / "state"), diagnostics_period=0.5, max_side=240,
                        crf_iterations=60)
        try:
            session = VosSession(client, node)
            round_trips = []
            for frame in frames[:4]:  # one at a time: the per-frame processing time
                start = time.monotonic()
                session.segment(frame, timeout=60.0)
                round_trips.append(time.monotonic() - start)
            per_frame = statistics.median(round_trips[1:])
            assert per_frame > 1 / 30, f"pipeline not slow enough for this test: {round_trips}"

            published: dict[int, float] = {}
            messages = [image_msg(frame, "rgb8") for frame in frames]
            duration = min(max(3.0, 8 * per_frame), 15.0)
            start = time.monotonic()
            count = 0
            while time.monotonic() - start < duration:
                msg = messages[count % len(messages)]
                stamp = session.next_stamp()
                msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
                published[stamp] = time.monotonic()
                session.image_pub.publish(msg)
                count += 1
                time.sleep(max(0.0, start + count / 30 - time.monotonic()))
            # The node has caught up once it sent the newest frame's mask, or nothing for a while.
            session.masks.wait_for(lambda m: stamp_ns(m) == stamp, 3 * per_frame + 5.0)
            give_up = time.monotonic() + 6 * per_frame + 5.0  # a queue would keep sending for long
            while time.monotonic() < give_up and session.masks.wait_for(
                lambda m: True, per_frame + 0.5, since=time.monotonic()
            ):
                pass

            received = [(t, stamp_ns(m)) for t, m in list(session.masks.messages) if stamp_ns(m) in published]
            assert len(received) >= 3, f"only {len(received)} masks for {count} frames"
            assert len(received) < count
            # Per-frame time under this very load: saturated, the node sends one mask per frame time.
            streaming = statistics.median(b[0] - a[0] for a, b in itertools.pairwise(received))
            bound = 3 * max(per_frame, streaming) + 1.0
            latencies = [t - published[stamp] for t, stamp in received]
            # A queue makes latency grow frame after frame, so the typical and the last masks are
            # late; one mask delayed by a stall of the host (seen once: 1.7 s among 0.15 s) is not.
            typical, last = statistics.median(latencies), latencies[-1]
            assert typical < bound and last < bound, (
                f"latency median {typical:.2f} s, last {last:.2f} s, bound {bound:.2f} s (per frame "
                f"{per_frame:.2f} s idle, {streaming:.2f} s streaming); latencies "
                f"{[round(x, 2) for x in latencies]}"
            )
            values = session.diagnostics_now(lambda v: int(v["frames_dropped"]) > 0)
            assert int(values["frames_dropped"]) > 0
        finally:
            node.stop()


# --- 9: stopping and failing to start -------------------------------------------------------------


def _clean_exit_log(log: str) -> list[str]:
    """What must not be in the log of a node stopped by a signal."""
    bad = ("Traceback", "terminate called", "frame failed", "RCLError", "[ERROR]", "[FATAL]")
    return [text for text in bad if text in log]


@pytest.mark.parametrize("signals", [1, 2])
def test_sigint_while_streaming_stops_cleanly(tiny_checkpoint: Path, tmp_path: Path, signals: int) -> None:
    """SIGINT (or two in a row) while 30 Hz frames stream into a busy pipeline: exit status 0, no
    traceback, no failed frame, no abort; a second signal is logged and ignored."""
    height, width = 240, 320
    messages = [image_msg(moving_square(i, height, width), "rgb8") for i in range(4)]
    with RosClient(DOMAIN_STOP) as client:
        node = _started(DOMAIN_STOP, tmp_path / "node.log", client, checkpoint=str(tiny_checkpoint),
                        state_dir=str(tmp_path / "state"), diagnostics_period=0.1, max_side=160,
                        crf_iterations=20)
        streaming = threading.Event()

        def stream() -> None:
            session = VosSession(client, node)
            client.wait_for_subscriber(session.image_pub)
            session.stream_until(messages, streaming)

        masks = client.record(Image, "/amp_vos/mask")
        publisher = threading.Thread(target=stream, daemon=True)
        publisher.start()
        try:
            assert masks.wait_for(lambda _: True, 60.0) is not None, node.log()
            assert masks.wait_for(lambda _: True, 30.0, since=time.monotonic()) is not None, node.log()
            for _ in range(signals):
                node.process.send_signal(signal.SIGINT)
                time.sleep(0.05)
            code = node.process.wait(timeout=60.0)
        finally:
            streaming.set()
            publisher.join(timeout=5.0)
            node.stop()
    log = node.log()
    assert code == 0, log
    assert not _clean_exit_log(log), log
    if signals == 2:
        assert "already stopping" in log, log


def test_teach_in_flight_at_sigint_is_answered(tiny_checkpoint: Path, tmp_path: Path) -> None:
    """SIGINT while a (slow, 480×640) teach runs: the teach finishes, is saved and answered; then
    the node exits with status 0."""
    height, width = 480, 640
    state_dir = tmp_path / "state"
    with RosClient(DOMAIN_STOP) as client:
        node = _started(DOMAIN_STOP, tmp_path / "node.log", client, checkpoint=str(tiny_checkpoint),
                        state_dir=str(state_dir), max_side=480)
        try:
            teach = client.service_client("/amp/teach")
            assert teach.wait_for_service(timeout_sec=30.0)
            answered = threading.Event()
            request = teach_request("cup", square_mask(1, height, width), moving_square(1, height, width))
            future = teach.call_async(request)
            future.add_done_callback(lambda _: answered.set())
            time.sleep(0.5)  # the request has arrived; the teach takes longer than that on 2 cores
            node.process.send_signal(signal.SIGINT)
            assert answered.wait(60.0), node.log()
            code = node.process.wait(timeout=60.0)
        finally:
            node.stop()
    assert future.result().success, future.result().message
    assert code == 0 and not _clean_exit_log(node.log()), node.log()
    assert (state_dir / STATE_FILE).is_file()


@pytest.mark.parametrize(
    ("parameter", "value", "expected"),
    [("checkpoint", "/nonexistent", "/nonexistent"), ("flow_source", "bogus", "flow_source"),
     ("threads", -1, "threads"),
     ("qos_overrides./amp_vos/image.subscription.reliability", "bogus", "QoS override of /amp_vos/image"),
     ("qos_overrides./amp_vos/mask.publisher.depth", "abc", "qos_overrides./amp_vos/mask.publisher.depth")],
)
def test_bad_start_parameter_is_one_fatal_line(
    tiny_checkpoint: Path, tmp_path: Path, parameter: str, value: object, expected: str
) -> None:
    """A bad start-up parameter: one FATAL line that names it, exit status 1, no traceback."""
    parameters = {"checkpoint": str(tiny_checkpoint), "state_dir": str(tmp_path / "state"), parameter: value}
    node = NodeProcess(domain_id=DOMAIN_BAD_START, log_path=tmp_path / "node.log", **parameters).start()
    try:
        code = node.process.wait(timeout=120.0)
    finally:
        node.stop()
    log = node.log()
    fatal = [line for line in log.splitlines() if "[FATAL]" in line]
    assert code == 1, log
    assert len(fatal) == 1 and expected in fatal[0], log
    assert "Traceback" not in log and "Error" not in log.replace(fatal[0], ""), log
