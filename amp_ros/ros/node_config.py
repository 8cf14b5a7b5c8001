"""The ``amp_vos`` node's settings: node-only ones here, the pipeline's nested (no ROS imports).

Every setting is a ROS parameter of the same name (see :mod:`amp_ros.setting_fields`): the node
declares :data:`PARAMETERS` with these defaults, ranges and descriptions, and config/vos.yaml is
checked against them. Read-only ones need a restart; the others can change at run time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from amp_ros.setting_fields import Setting, flatten, group, setting
from amp_ros.settings import PipelineConfig

NODE_NAME = "amp_vos"

STATE_ROOT = "amp_ros"
"""Folder under ROS_HOME (default ~/.ros) that holds each node's default state_dir."""


@dataclass(frozen=True)
class NodeConfig:
    """The node's parameters: its own settings and the pipeline's (:class:`PipelineConfig`)."""

    autostart: bool = field(default=True, metadata=setting(
        "configure and activate at start; false: wait for lifecycle transitions", read_only=True
    ))
    checkpoint: str = field(default="", metadata=setting(
        "checkpoint: empty = the shipped default, a shipped model's name, or a folder", read_only=True
    ))
    device: str = field(default="cpu", metadata=setting(
        "cpu | cuda | auto", ("cpu", "cuda", "auto"), read_only=True
    ))
    threads: int = field(default=0, metadata=setting(
        "torch CPU threads; 0 = OMP_NUM_THREADS if set, else one fewer than the usable cores "
        "(at least 1), leaving one to receive frames", (0, 256), read_only=True
    ))
    max_side: int = field(default=0, metadata=setting(
        "processing size (longer side, px); 0 = the checkpoint's", (0, 4096), read_only=True
    ))
    qos: str = field(default="sensor_data", metadata=setting(
        "input QoS: sensor_data (best effort) | reliable; qos_overrides.<topic>.subscription.* "
        "parameters override it per topic", ("sensor_data", "reliable"), read_only=True
    ))
    image_transport: str = field(default="raw", metadata=setting(
        "raw: sensor_msgs/Image on ~/image | compressed: sensor_msgs/CompressedImage on "
        "<~/image>/compressed", ("raw", "compressed"), read_only=True
    ))
    state_dir: str = field(default="", metadata=setting(
        "where taught classes persist; empty = $ROS_HOME/amp_ros/<namespace>/<node name>",
        read_only=True
    ))
    teach_frames: int = field(default=30, metadata=setting(
        "processed frames kept (at processing size) for /amp/teach by stamp; 0 = none",
        (0, 300), read_only=True
    ))
    max_image_pixels: int = field(default=1920 * 1080, metadata=setting(
        "larger frames are rejected", (1, 100_000_000), read_only=True
    ))
    diagnostics_period: float = field(default=1.0, metadata=setting(
        "seconds between /diagnostics messages", (0.1, 60.0), read_only=True
    ))
    flow_source: str = field(default="auto", metadata=setting(
        "topic | dis | auto (DIS while ~/flow is silent)", ("topic", "dis", "auto")
    ))
    flow_timeout: float = field(default=1.0, metadata=setting(
        "auto mode: seconds without flow before DIS takes over", (0.0, 60.0)
    ))
    slop: float = field(default=0.005, metadata=setting(
        "max stamp difference (s) to pair a frame with a flow field", (0.0, 1.0)
    ))
    pipeline: PipelineConfig = field(default_factory=PipelineConfig, metadata=group())


PARAMETERS: list[Setting] = flatten(NodeConfig)
"""Every parameter of the node, in declaration order."""


def torch_threads(threads: int, cores: int, omp_num_threads: str | None = None) -> int | None:
    """The torch CPU threads for the ``threads`` parameter on a machine with ``cores`` usable
    cores: as given; for 0, None (torch's own choice) where OMP_NUM_THREADS is set, else one
    fewer than the cores (at least 1). The node's executor thread receives every camera frame
    (and DDS its bytes) while the worker computes; torch's OpenMP threads on every core would
    keep waiting for the one that shares its core with them."""
    if threads > 0:
        return threads
    return None if omp_num_threads else max(1, cores - 1)


def state_dir_of(config: NodeConfig, fully_qualified_name: str) -> Path:
    """Where a node keeps its taught classes: ``state_dir``, or when it is empty a folder of its
    own under $ROS_HOME (default ~/.ros), so that two nodes never share a state file."""
    if config.state_dir:
        return Path(config.state_dir).expanduser()
    home = Path(os.environ.get("ROS_HOME") or "~/.ros").expanduser()
    return home / STATE_ROOT / fully_qualified_name.strip("/")
