"""The Fast DDS / ROS environment amp_ros processes run with, in one place.

Transport choice (measured with ``scripts/transport_bench.py``, README "Transport"): amp_ros's
XML profile ``config/fastdds_shm.xml`` (a 16 MB shared-memory segment plus UDPv4, builtin
transports off), not Fast DDS's ``FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA``: with the profile every
30 Hz 480p and 1080p rgb8 frame arrived best effort, with more throughput; LARGE_DATA delivered
only a few frames whenever ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST (rmw_fastrtps then replaces
the builtin transports, so LARGE_DATA is ignored), which amp_ros's own processes use. A user's
own choice wins: an exported FASTDDS_DEFAULT_PROFILES_FILE or FASTDDS_BUILTIN_TRANSPORTS is kept
by :func:`apply_dds_variables` (and by the launch file).

* :func:`fastdds_profile`: amp_ros's shared-memory profile (480×854 frames need its 16 MB
  segments);
* :func:`dds_variables`: the variables for it (and for localhost-only discovery);
* :func:`apply_dds_variables` / :func:`dds_variables_applied`: put them into this process's
  environment; Fast DDS reads them when the process creates its first participant, so before the
  first ``rclpy.init``;
* :func:`child_env`: the whole environment of a child process on a private domain.

The launch file sets the same profile for launched nodes (``launch/vos.launch.py``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROFILE_NAME = "fastdds_shm.xml"
PROFILE_ENV = "FASTDDS_DEFAULT_PROFILES_FILE"
BUILTIN_TRANSPORTS_ENV = "FASTDDS_BUILTIN_TRANSPORTS"
DISCOVERY_ENV = "ROS_AUTOMATIC_DISCOVERY_RANGE"


def fastdds_profile() -> Path | None:
    """The amp_ros Fast DDS profile: config/ of a source checkout, else share/amp_ros/config/ of
    the Python prefix or an ament prefix; None when none is found."""
    candidates = [REPO / "config" / PROFILE_NAME]
    prefixes = [sys.prefix, *os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)]
    candidates += [Path(p) / "share" / "amp_ros" / "config" / PROFILE_NAME for p in prefixes if p]
    return next((path for path in candidates if path.is_file()), None)


def dds_variables(*, localhost: bool = True) -> dict[str, str]:
    """The shared-memory profile (when found) and, with ``localhost``, localhost-only discovery."""
    variables = {DISCOVERY_ENV: "LOCALHOST"} if localhost else {}
    profile = fastdds_profile()
    if profile is not None:
        variables[PROFILE_ENV] = str(profile)
    return variables


def apply_dds_variables(*, localhost: bool = True) -> None:
    """Set :func:`dds_variables` in this process where the user has not set them already; a
    user's FASTDDS_BUILTIN_TRANSPORTS (e.g. LARGE_DATA) is their transport choice: then no
    profile is added, as the profile would turn the builtin transports off."""
    for key, value in dds_variables(localhost=localhost).items():
        if key == PROFILE_ENV and os.environ.get(BUILTIN_TRANSPORTS_ENV):
            continue
        os.environ.setdefault(key, value)


@contextmanager
def dds_variables_applied(*, localhost: bool = True) -> Iterator[dict[str, str]]:
    """Set :func:`dds_variables` in this process (overriding), restoring the old values on exit."""
    variables = dds_variables(localhost=localhost)
    saved = {key: os.environ.get(key) for key in variables}
    os.environ.update(variables)
    try:
        yield variables
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def child_env(domain_id: int, *, threads: int | None = None) -> dict[str, str]:
    """Environment of a child process on ``domain_id``: this one's, plus localhost discovery,
    the SHM profile, unbuffered output and this checkout on PYTHONPATH.

    threads: torch/OpenMP threads of the child (None keeps the default).
    """
    env = dict(os.environ)
    env.update(ROS_DOMAIN_ID=str(domain_id), PYTHONUNBUFFERED="1")
    env.update(dds_variables())
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env
