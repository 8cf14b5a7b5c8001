"""The ``amp_vos`` node always exits cleanly: 20 start/stream/interrupt cycles.

SIGINT (and every third cycle SIGTERM) at different moments — while the process is still
importing, while it loads the model, idle, and while 30 Hz frames stream — must end the process
with status 0, no traceback and no error line, and leave the taught class stored before intact.
Kept cheap: the tiny checkpoint, 48×64 frames, one node at a time, one client for all cycles, on
a private localhost-only ROS domain (ros_domains.py: "node_exit").
"""

from __future__ import annotations

import hashlib
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from ros_domains import domain
from ros_harness import NodeProcess, RosClient, VosSession, clean_exit_problems, image_msg, process_ros_env

from amp_interfaces.srv import Teach
from amp_ros.class_store import STATE_FILE
from amp_ros.ros.dds_env import apply_dds_variables

apply_dds_variables()  # before this process's first participant (see test_node.py)

DOMAIN_EXIT = domain("node_exit")
HEIGHT, WIDTH = 48, 64
CYCLES = 20
MOMENTS = ("importing", "starting", "idle", "streaming")
SIGTERM_EVERY = 3
STARTING_DELAYS = (0.5, 1.5, 3.0, 5.0, 8.0)  # seconds into the start, one per "starting" cycle


@pytest.fixture(scope="module", autouse=True)
def _ros_environment() -> Iterator[None]:
    with process_ros_env():
        yield


def _frame(index: int) -> np.ndarray:
    frame = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    frame[..., 2] = np.linspace(30, 200, HEIGHT, dtype=np.uint8)[:, None]
    left = 4 + 3 * (index % 12)
    frame[12:28, left:left + 16] = (220, 40, 40)
    return frame


def _catches_sigterm(pid: int) -> bool:
    """Whether process ``pid`` has a SIGTERM handler (Linux: SigCgt in /proc/<pid>/status); the
    node installs its handlers before its heavy imports, Python itself catches only SIGINT."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    return False


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _interrupt(node: NodeProcess, client: RosClient, moment: str, signum: int, delay: float) -> None:
    """Start ``node``, bring it to ``moment`` (starting: ``delay`` s after its signal handlers are
    in place) and send it ``signum``."""
    node.start()
    deadline = time.monotonic() + 60.0
    while not _catches_sigterm(node.process.pid):  # Python runs: the node's handlers are in place
        assert node.alive and time.monotonic() < deadline, node.log()
        time.sleep(0.005)
    if moment == "starting":  # somewhere in the imports, rclpy.init, loading the model, activation
        time.sleep(delay)
    elif moment in ("idle", "streaming"):
        node.wait_ready(client)
    stop_streaming = threading.Event()
    streamer = None
    if moment == "streaming":
        session = VosSession(client, node)
        streamer = threading.Thread(target=session.stream_until,
                                    args=([image_msg(_frame(i), "rgb8") for i in range(4)], stop_streaming),
                                    daemon=True)
        streamer.start()
        assert session.masks.wait_for(lambda _: True, 60.0) is not None, node.log()
    try:
        node.process.send_signal(signum)
        node.process.wait(timeout=60.0)
    finally:
        stop_streaming.set()
        if streamer is not None:
            streamer.join(timeout=5.0)
        node.stop()


def test_twenty_interrupted_runs_exit_cleanly(tiny_checkpoint: Path, tmp_path: Path) -> None:
    """Each cycle: exit status 0, nothing in the log that a clean stop does not write, the
    state file as it was; afterwards the taught class is restored by a fresh node."""
    state_dir = tmp_path / "state"
    parameters = {"checkpoint": str(tiny_checkpoint), "state_dir": str(state_dir)}
    with RosClient(DOMAIN_EXIT) as client:
        first = NodeProcess(domain_id=DOMAIN_EXIT, log_path=tmp_path / "teach.log", **parameters).start()
        try:
            first.wait_ready(client)
            mask = np.zeros((HEIGHT, WIDTH), np.uint8)
            mask[12:28, 4:20] = 255
            taught = client.call("/amp/teach", Teach.Request(
                label="cup", image=image_msg(_frame(0), "rgb8"), mask=image_msg(mask, "mono8")))
            assert taught.success, taught.message
        finally:
            assert first.stop(timeout=60.0) == 0, first.log()
        digest = _digest(state_dir / STATE_FILE)

        failures = []
        for cycle in range(CYCLES):
            moment = MOMENTS[cycle % len(MOMENTS)]
            signum = signal.SIGTERM if cycle % SIGTERM_EVERY == SIGTERM_EVERY - 1 else signal.SIGINT
            log_path = tmp_path / f"cycle{cycle:02d}.log"
            node = NodeProcess(domain_id=DOMAIN_EXIT, log_path=log_path, **parameters)
            _interrupt(node, client, moment, signum, STARTING_DELAYS[cycle // len(MOMENTS)])
            log = node.log()
            code = node.process.returncode
            problems = clean_exit_problems(log)
            if moment == "importing" and "stopped while starting" not in log:
                problems.append("no 'stopped while starting' (a signal while importing loads no model)")
            if code != 0 or problems or _digest(state_dir / STATE_FILE) != digest:
                failures.append(f"cycle {cycle} ({moment}, {signal.Signals(signum).name}): exit {code}, "
                                f"{problems}\n{log[-2000:]}")
        assert not failures, "\n\n".join(failures)

        last = NodeProcess(domain_id=DOMAIN_EXIT, log_path=tmp_path / "last.log", **parameters).start()
        try:
            last.wait_ready(client)
            assert "taught classes ['cup']" in last.log(), last.log()
        finally:
            assert last.stop(timeout=60.0) == 0, last.log()
