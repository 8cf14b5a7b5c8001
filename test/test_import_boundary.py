"""The method imports no ROS: checked in a fresh interpreter through sys.modules."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CORE_MODULES = (
    "amp_ros",
    "amp_ros.pipeline",
    "amp_ros.network",
    "amp_ros.proxies",
    "amp_ros.classifier",
    "amp_ros.crf",
    "amp_ros.flow",
    "amp_ros.checkpoint",
    "amp_ros.inference",
    "amp_ros.pseudo_labels",
    "amp_ros.image_codec",
)
ROS_PREFIXES = ("rclpy", "rosidl", "sensor_msgs")

_PROBE = f"""
import json, sys
import {", ".join(CORE_MODULES)}
print(json.dumps(sorted(sys.modules)))
"""


def test_core_modules_load_no_ros() -> None:
    """Importing the core in a new process loads no rclpy, rosidl or sensor_msgs module."""
    completed = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    loaded = json.loads(completed.stdout.strip().splitlines()[-1])
    assert set(CORE_MODULES) <= set(loaded)
    ros = [name for name in loaded if name.split(".")[0].startswith(ROS_PREFIXES)]
    assert ros == []
