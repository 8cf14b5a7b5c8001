"""``amp-bench``: :mod:`amp_ros.benchmark` with ``--via ros`` added, the real node over real DDS.

The node runs as a child process (:class:`~amp_ros.ros.node_process.NodeProcess`, its own
localhost-only domain, DIS flow, a throw-away state_dir). This process publishes the clip's frames
on the node's ``~/image`` at ``--rate`` like a camera (stamps 1/rate apart, never waiting for the
node), records each ``~/mask`` with its receipt time and matches it to its frame by header stamp.
Reported: masks/s, dropped frames (published − masked), latency (publish → receipt) after the
warm-up, time to the first mask, the node's counters from /diagnostics, and the node's resident
memory when it is ready, after its first mask, at the 1,000th frame and at the end (the soak:
``amp-bench --via ros --frames 10000 --rate 30``).
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.context import Context
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import Image

from amp_ros import benchmark
from amp_ros.benchmark import RSS_FRAME, BenchRunner, BenchSettings, rss_change_percent, rss_mb, summary
from amp_ros.errors import AmpError
from amp_ros.image_codec import split_stamp, stamp_ns
from amp_ros.models import resolve_checkpoint
from amp_ros.ros.dds_env import apply_dds_variables
from amp_ros.ros.messages import image_msg
from amp_ros.ros.node_config import NODE_NAME
from amp_ros.ros.node_process import NodeProcess

FIRST_STAMP = 1_000_000_000
"""Header stamp (ns) of the first frame; frame i is stamped FIRST_STAMP + i / rate."""
MATCH_TIMEOUT = 60.0
"""Seconds to wait for the node to subscribe to the frames once it is ready."""
DRAIN_QUIET = 5.0
"""After the last frame: stop waiting once no mask came for max(this, 3 × the slowest latency)."""
DRAIN_TIMEOUT = 300.0
SETTLE = 1.0
"""Seconds between the publisher seeing the node's subscription and the first frame: a
best-effort frame sent before the node's reader has matched this writer would be lost."""
COUNTERS = ("frames_processed", "frames_dropped", "inputs_rejected", "frames_failed")
"""The node's /diagnostics values a result keeps."""


class BenchError(AmpError):
    """The node could not be started, died, or never subscribed."""


class _Masks:
    """Receipt times (monotonic s) of the masks, by frame index, and the node's last counters."""

    def __init__(self, index_of: Mapping[int, int]):
        self.index_of = index_of
        self.received: dict[int, float] = {}
        self.unmatched = 0
        self.counters: dict[str, str] | None = None
        self.counters_time = -float("inf")

    def on_mask(self, msg: Image) -> None:
        """~/mask callback: note when the mask of which frame arrived."""
        now = time.monotonic()
        index = self.index_of.get(stamp_ns(msg.header))
        if index is None or index in self.received:
            self.unmatched += 1
        else:
            self.received[index] = now

    def on_diagnostics(self, msg: DiagnosticArray) -> None:
        """/diagnostics callback: keep the node's status values."""
        for status in msg.status:
            if status.name.endswith(f"{NODE_NAME}: segmentation"):
                self.counters = {kv.key: kv.value for kv in status.values}
                self.counters_time = time.monotonic()


def _node_process(settings: BenchSettings, domain_id: int, folder: Path) -> NodeProcess:
    width, height = settings.size
    return NodeProcess(
        domain_id=domain_id,
        log_path=folder / "node.log",
        checkpoint=str(resolve_checkpoint(settings.checkpoint)),
        device=settings.device,
        threads=settings.threads,
        qos=settings.qos,
        flow_source="dis",
        state_dir=str(folder / "state"),
        max_image_pixels=max(1920 * 1080, width * height),
        **dict(settings.overrides),
    )


def _input_qos(settings: BenchSettings) -> QoSProfile:
    """The node's input QoS for ``--qos`` (node.py: sensor_data, or reliable depth 5)."""
    if settings.qos == "sensor_data":
        return qos_profile_sensor_data
    return QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)


def _wait(condition: Any, timeout: float, what: str, node: NodeProcess) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if not node.alive:
            raise BenchError(f"the node exited while waiting for {what}:\n{node.log()[-3000:]}")
        if time.monotonic() > deadline:
            raise BenchError(f"no {what} within {timeout:.0f} s; node log:\n{node.log()[-3000:]}")
        time.sleep(0.05)


def run_via_ros(settings: BenchSettings) -> dict[str, Any]:
    """``--via ros``: stream the frames into a fresh ``amp_vos`` process and time the masks."""
    result = benchmark.record(settings)
    default_domain = 30 + os.getpid() % 60
    domain_id = settings.domain_id if settings.domain_id is not None else int(
        os.environ.get("AMP_BENCH_DOMAIN_ID", default_domain))
    frames = benchmark.clip_frames(settings.clip, settings.size)
    messages = [image_msg(frame, "rgb8", stamp_ns=0, frame_id="camera") for frame in frames]
    del frames
    step_ns = round(1e9 / settings.rate)
    stamps = [FIRST_STAMP + i * step_ns for i in range(settings.frames)]
    masks = _Masks({stamp: i for i, stamp in enumerate(stamps)})
    apply_dds_variables()  # before this process's first participant
    with tempfile.TemporaryDirectory(prefix="amp-bench-") as tmp:
        node = _node_process(settings, domain_id, Path(tmp))
        context = Context()
        rclpy.init(context=context, domain_id=domain_id)
        client = rclpy.create_node("amp_bench", context=context)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(client)

        def spin() -> None:
            try:
                executor.spin()
            except ExternalShutdownException:
                pass

        spinner = threading.Thread(target=spin, name="amp_bench_spin", daemon=True)
        try:
            topic = f"/{NODE_NAME}"
            publisher = client.create_publisher(Image, f"{topic}/image", _input_qos(settings))
            mask_sub = client.create_subscription(
                Image, f"{topic}/mask", masks.on_mask,
                QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
            client.create_subscription(DiagnosticArray, "/diagnostics", masks.on_diagnostics, 10)
            spinner.start()
            started = time.monotonic()
            node.start()
            try:
                node.wait_ready(client)
            except RuntimeError as err:
                raise BenchError(str(err)) from err
            _wait(lambda: publisher.get_subscription_count() >= 1, MATCH_TIMEOUT,
                  "subscription to the frames", node)
            _wait(lambda: mask_sub.get_publisher_count() >= 1, MATCH_TIMEOUT, "mask publisher", node)
            result["node_ready_s"] = time.monotonic() - started
            time.sleep(SETTLE)  # matched on this side; let the node's reader match this writer too
            pid = node.process.pid
            rss: dict[str, float | None] = {"start": rss_mb(pid)}
            published_at = _stream(settings, publisher, messages, stamps, masks, node, rss)
            _drain(settings, published_at, masks, node, rss)
            rss["end"] = rss_mb(pid)
            deadline = time.monotonic() + 3.0  # one more /diagnostics (period 1 s) after the last mask
            drained = time.monotonic()
            while masks.counters_time < drained and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            executor.shutdown(timeout_sec=5.0)
            client.destroy_node()
            rclpy.try_shutdown(context=context)
            if spinner.is_alive():
                spinner.join(timeout=5.0)
            node.stop()
    result.update(_stream_result(settings, published_at, masks.received))
    result.update(
        unmatched_masks=masks.unmatched,
        node_counters={k: int(v) for k, v in (masks.counters or {}).items() if k in COUNTERS},
        rss_mb=rss,
        rss_change_percent=rss_change_percent(rss),
    )
    result["machine"]["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    return result


def _stream(
    settings: BenchSettings, publisher: Any, messages: Sequence[Image], stamps: Sequence[int],
    masks: _Masks, node: NodeProcess, rss: dict[str, float | None],
) -> list[float]:
    """Publish frame i at t0 + i / rate (late frames go at once, none is skipped); the publish
    times. Samples the node's memory after its first mask and at frame 1,000."""
    pid = node.process.pid
    published_at = [0.0] * settings.frames
    period = 1.0 / settings.rate
    start = time.monotonic()
    for index, stamp in enumerate(stamps):
        wait = start + index * period - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        msg = messages[index % len(messages)]
        msg.header.stamp.sec, msg.header.stamp.nanosec = split_stamp(stamp)
        published_at[index] = time.monotonic()
        publisher.publish(msg)
        if "first_mask" not in rss and masks.received:
            rss["first_mask"] = rss_mb(pid)
        if index + 1 == RSS_FRAME:
            rss[f"frame_{RSS_FRAME}"] = rss_mb(pid)
        if (index + 1) % 1000 == 0:
            if not node.alive:
                raise BenchError(f"the node exited at frame {index + 1}:\n{node.log()[-3000:]}")
            print(f"amp-bench: frame {index + 1}/{settings.frames}, masks {len(masks.received)}, "
                  f"node RSS {rss_mb(pid) or 0:.0f} MiB", file=sys.stderr, flush=True)
    return published_at


def _drain(
    settings: BenchSettings, published_at: Sequence[float], masks: _Masks, node: NodeProcess,
    rss: dict[str, float | None],
) -> None:
    """Wait for the last frame's mask, or until masks stop coming (the rest were dropped): no
    new one for max(DRAIN_QUIET, 3 × the slowest latency so far); before the first mask, up to
    DRAIN_TIMEOUT (a cold node may take seconds)."""
    deadline = time.monotonic() + DRAIN_TIMEOUT
    last_count, last_change = len(masks.received), time.monotonic()
    while settings.frames - 1 not in masks.received and node.alive:
        now = time.monotonic()
        received = dict(masks.received)
        if len(received) != last_count:
            last_count, last_change = len(received), now
        if received and "first_mask" not in rss:
            rss["first_mask"] = rss_mb(node.process.pid)
        slowest = max((t - published_at[i] for i, t in received.items()), default=None)
        if now > deadline or (slowest is not None and now - last_change > max(DRAIN_QUIET, 3 * slowest)):
            break
        time.sleep(0.05)


def _stream_result(
    settings: BenchSettings, published_at: Sequence[float], received: Mapping[int, float]
) -> dict[str, Any]:
    """masks/s, dropped, latency and time to the first mask from publish and receipt times.

    latency_ms: frames from --warmup on that were published after the first mask had come (the
    node warm); latency_all_ms: every masked frame from --warmup on (start-up included).
    masks_per_s: the masks after the first one over the time since it came.
    """
    published = len(published_at)
    first_mask = min(received.values(), default=None)
    masked = sorted(i for i in received if i >= settings.warmup)
    steady = [i for i in masked if first_mask is not None and published_at[i] >= first_mask]
    times = sorted(received.values())
    spread = times[-1] - times[0] if times else 0.0
    span = published_at[-1] - published_at[0]
    return {
        "rate_hz": settings.rate,
        "input_hz": (published - 1) / span if span > 0 else None,
        "published": published,
        "masks": len(received),
        "dropped": published - len(received),
        "dropped_percent": 100.0 * (published - len(received)) / published,
        "masks_per_s": (len(times) - 1) / spread if spread > 0 else None,
        "fps": (len(times) - 1) / spread if spread > 0 else None,
        "latency_ms": summary([(received[i] - published_at[i]) * 1000 for i in steady]),
        "latency_all_ms": summary([(received[i] - published_at[i]) * 1000 for i in masked]),
        "time_to_first_mask_s": first_mask - published_at[0] if first_mask is not None else None,
        "first_masked_frame": min(received) if received else None,
        "qos": settings.qos,
    }


RUNNERS: Mapping[str, BenchRunner] = {**benchmark.RUNNERS, "ros": run_via_ros}
"""``amp-bench``'s runners: ``offline`` (:mod:`amp_ros.benchmark`) and ``ros``."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``amp-bench``; returns the exit status."""
    return benchmark.main(argv, runners=RUNNERS)


if __name__ == "__main__":
    sys.exit(main())
