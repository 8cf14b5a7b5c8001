#!/usr/bin/env python3
"""Fast DDS transports for camera frames between two processes: throughput and latency.

Compares, for rgb8 Images of 854×480 and 1920×1080 sent from one process to another on this
host (rclpy, rmw_fastrtps_cpp, ROS_AUTOMATIC_DISCOVERY_RANGE as --discovery says):

* ``shm_profile``: amp_ros's profile config/fastdds_shm.xml (FASTDDS_DEFAULT_PROFILES_FILE: a
  16 MB shared-memory segment, builtin transports off);
* ``large_data``: Fast DDS's own FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA (shared memory + TCP for
  data, UDP multicast only for discovery);
* ``default``: nothing set (UDPv4 + shared memory with 512 KB segments), for reference;
* ``default→X``: a publisher with nothing set (a camera driver started on its own) and a
  subscriber with X.

Each case runs a fresh publisher and subscriber process: ``--seconds`` at 30 Hz with the node's
input QoS (sensor_data: best effort, keep last 5) for latency (publish → callback, same clock)
and the share of frames delivered, then as fast as the publisher can for ``--seconds`` (reliable,
keep last 10) for throughput in frames and MB delivered per second. Usage (about 8 minutes on
two cores; ``--cases``/``--sizes`` pick a subset)::

    OMP_NUM_THREADS=1 .venv/bin/python scripts/transport_bench.py [--seconds 3] [--domain 91] \
        [--discovery LOCALHOST|SUBNET] [--cases shm_profile,large_data] [--sizes 480p]

Prints a Markdown table. Numbers depend on the machine's load: rerun when comparing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SIZES = {"480p": (480, 854), "1080p": (1080, 1920)}
SHM_PROFILE = {"FASTDDS_DEFAULT_PROFILES_FILE": str(REPO / "config" / "fastdds_shm.xml")}
LARGE_DATA = {"FASTDDS_BUILTIN_TRANSPORTS": "LARGE_DATA"}
CASES = {  # name -> (publisher's environment, subscriber's)
    "shm_profile": (SHM_PROFILE, SHM_PROFILE),
    "large_data": (LARGE_DATA, LARGE_DATA),
    "default": ({}, {}),
    "default→shm_profile": ({}, SHM_PROFILE),
    "default→large_data": ({}, LARGE_DATA),
}
TOPIC = "/transport_bench/image"
RATE_HZ = 30.0


def _qos(phase: str) -> object:
    """sensor_data for the latency phase (the node's default input QoS), reliable for throughput."""
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

    if phase == "latency":
        return qos_profile_sensor_data
    return QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


def subscriber(phase: str, seconds: float) -> None:
    """Child: count frames and latencies on TOPIC until ``seconds`` after the first frame or 2 s
    of silence after it; print one JSON line."""
    import rclpy
    from rclpy.node import Node
    from sensor_msgs.msg import Image

    rclpy.init()
    node = Node("transport_bench_sub")
    latencies: list[float] = []
    sizes: list[int] = []
    times: list[float] = []

    def on_image(msg: Image) -> None:
        now = time.time_ns()
        if msg.header.frame_id == "warmup":
            return
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        latencies.append((now - stamp) / 1e6)
        sizes.append(len(msg.data))
        times.append(time.monotonic())

    node.create_subscription(Image, TOPIC, on_image, _qos(phase))
    print("ready", flush=True)
    deadline = time.monotonic() + seconds + 30.0  # the publisher must show up in that time
    while time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
        if times and time.monotonic() - times[-1] > 2.0:
            break
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    print(json.dumps({"received": len(latencies), "span_s": span, "bytes": sum(sizes),
                      "latencies_ms": latencies}), flush=True)  # fmt: skip
    node.destroy_node()
    rclpy.shutdown()


def publisher(phase: str, seconds: float, height: int, width: int) -> None:
    """Child: wait for the subscriber, then publish for ``seconds`` (30 Hz or flat out)."""
    import rclpy
    from rclpy.node import Node
    from sensor_msgs.msg import Image

    rclpy.init()
    node = Node("transport_bench_pub")
    pub = node.create_publisher(Image, TOPIC, _qos(phase))
    msg = Image(height=height, width=width, encoding="rgb8", step=width * 3)
    msg.data = bytes(range(256)) * (height * width * 3 // 256) + bytes(height * width * 3 % 256)
    deadline = time.monotonic() + 30.0
    while pub.get_subscription_count() < 1 and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    # Warm-up (not counted): frames marked "warmup" for 1 s, while transports connect.
    start = time.monotonic()
    msg.header.frame_id = "warmup"
    while time.monotonic() - start < 1.0:
        _publish(pub, msg)
        time.sleep(1.0 / RATE_HZ)
    msg.header.frame_id = "camera"
    sent = failed = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if phase == "latency":
            time.sleep(max(0.0, start + (sent + failed) / RATE_HZ - time.monotonic()))
        if _publish(pub, msg):
            sent += 1
        else:
            failed += 1
    print(json.dumps({"sent": sent, "failed": failed}), flush=True)
    time.sleep(1.0)  # reliable: let the last frames go out
    node.destroy_node()
    rclpy.shutdown()


def _publish(pub: object, msg: object) -> bool:
    """Publish ``msg`` stamped now; False when Fast DDS refuses it (RCLError "cannot publish")."""
    from rclpy._rclpy_pybind11 import RCLError

    now = time.time_ns()
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(now, 1_000_000_000)
    try:
        pub.publish(msg)
    except RCLError:
        return False
    return True


def _line_starting(stream: object, prefix: str) -> str:
    """The child's next output line that starts with ``prefix``; RuntimeError if it ended."""
    for line in stream:
        if line.startswith(prefix):
            return line
    raise RuntimeError(f"the subscriber ended without printing {prefix!r}")


def _run_case(case: str, size: str, phase: str, seconds: float, domain: int, reach: str) -> dict:
    """One publisher and one subscriber process with the case's environment."""
    base = {key: value for key, value in os.environ.items()
            if key not in ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTDDS_BUILTIN_TRANSPORTS")}  # fmt: skip
    base.update(ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE=reach,
                RMW_IMPLEMENTATION="rmw_fastrtps_cpp", OMP_NUM_THREADS="1")  # fmt: skip
    pub_env, sub_env = ({**base, **extra} for extra in CASES[case])
    me = [sys.executable, str(Path(__file__).resolve())]
    height, width = SIZES[size]
    sub = subprocess.Popen([*me, "--role", "sub", "--phase", phase, "--seconds", str(seconds)],
                           env=sub_env, stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        _line_starting(sub.stdout, "ready")  # (Fast DDS may log to stdout too)
        pub = subprocess.run([*me, "--role", "pub", "--phase", phase, "--seconds", str(seconds),
                              "--height", str(height), "--width", str(width)],
                             env=pub_env, capture_output=True, text=True, timeout=seconds + 60)  # fmt: skip
        result = json.loads(_line_starting(sub.stdout, '{"received"'))
        sub.wait(timeout=60)
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.wait()
    if pub.returncode != 0:
        raise RuntimeError(f"publisher of {case} {size} {phase} failed:\n{pub.stderr[-3000:]}")
    result.update(json.loads(next(line for line in pub.stdout.splitlines() if line.startswith('{"sent"'))))
    return result


def main() -> int:
    """Run every case and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=("main", "pub", "sub"), default="main")
    parser.add_argument("--phase", choices=("latency", "throughput"), default="latency")
    parser.add_argument("--seconds", type=float, default=3.0, help="per phase and case (default 3)")
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=854)
    parser.add_argument("--domain", type=int, default=91, help="ROS_DOMAIN_ID of the runs (default 91)")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated subset of the cases")
    parser.add_argument("--sizes", default=",".join(SIZES), help="comma-separated: 480p,1080p")
    parser.add_argument("--discovery", choices=("LOCALHOST", "SUBNET"), default="LOCALHOST",
                        help="ROS_AUTOMATIC_DISCOVERY_RANGE (default LOCALHOST, as amp_ros sets it)")
    args = parser.parse_args()
    if args.role == "sub":
        subscriber(args.phase, args.seconds)
        return 0
    if args.role == "pub":
        publisher(args.phase, args.seconds, args.height, args.width)
        return 0
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}, {args.seconds:g} s per phase, "
          f"ROS_AUTOMATIC_DISCOVERY_RANGE={args.discovery}\n")
    print("| transport | frame | 30 Hz delivered | latency median / p95 (ms) "
          "| flat out: frames/s delivered | MB/s | publish errors |")
    print("|---|---|---|---|---|---|---|")
    for case in args.cases.split(","):
        for size in args.sizes.split(","):
            lat = _run_case(case, size, "latency", args.seconds, args.domain, args.discovery)
            thr = _run_case(case, size, "throughput", args.seconds, args.domain, args.discovery)
            ms = sorted(lat["latencies_ms"])
            p95 = ms[min(len(ms) - 1, math.ceil(0.95 * len(ms)) - 1)] if ms else 0.0  # nearest rank
            latency = f"{statistics.median(ms):.1f} / {p95:.1f}" if ms else "–"
            rate = thr["received"] / thr["span_s"] if thr["span_s"] > 0 else 0.0
            mbps = thr["bytes"] / thr["span_s"] / 1e6 if thr["span_s"] > 0 else 0.0
            sent_rate = thr["sent"] / args.seconds
            print(f"| {case} | {size} | {lat['received']}/{lat['sent']} | {latency} "
                  f"| {rate:.0f} (of {sent_rate:.0f} sent/s) | {mbps:.0f} "
                  f"| {lat['failed'] + thr['failed']} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
