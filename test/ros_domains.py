"""ROS domain ids of this test run, so that test runs side by side on one machine never meet.

Every test that starts DDS participants takes its domain from :func:`domain` by name: a fixed
offset within a block of ids that this process claims with a file lock (released when the process
ends, however it ends). Two checkouts' ``make test``, or a CI runner's parallel jobs, claim
different blocks; a fifth run at once waits for a block to come free.
"""

from __future__ import annotations

import fcntl
import os
import sys
import tempfile
from pathlib import Path
from typing import IO

# One id per name, in this order within the claimed block; a name used twice would share a domain.
NAMES = (
    "interfaces", "colcon_build", "transport_env", "replay", "benchmark",
    "eval_run_masks", "eval_run_teach",
    "node_common", "node_flow", "node_restart", "node_corrupt", "node_slow", "node_stop",
    "node_bad_start", "node_auto_flow", "node_callbacks", "node_exit",
    "lifecycle", "lifecycle_namespaces", "lifecycle_compressed", "lifecycle_bad_configure",
)
BLOCK = 24
# Ids 1..96: Fast DDS's default ports (7400 + 250 × id) stay below Linux's ephemeral range.
BLOCKS = 4
LOCK_FOLDER = Path(tempfile.gettempdir())

_claimed: tuple[int, IO[bytes]] | None = None  # (block, its open lock file, held until exit)


def lock_path(folder: Path, block: int) -> Path:
    """The lock file of ``block`` in ``folder``."""
    return folder / f"amp_ros-test-domains-{block}.lock"


def claim(folder: Path, blocks: int = BLOCKS) -> tuple[int, IO[bytes]] | None:
    """The first of ``blocks`` that no other open lock file holds, and its now locked file (held
    until closed); None when every block is held."""
    for block in range(blocks):
        handle = open(lock_path(folder, block), "ab")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        return block, handle
    return None


def claim_block() -> int:
    """The block of ids this process holds, claiming a free one on first use."""
    global _claimed
    if _claimed is None:
        _claimed = claim(LOCK_FOLDER)
    if _claimed is None:
        path = lock_path(LOCK_FOLDER, os.getpid() % BLOCKS)
        print(f"ros_domains: {BLOCKS} test runs hold every block of ROS domain ids; waiting for {path}",
              file=sys.stderr)
        handle = open(path, "ab")
        fcntl.flock(handle, fcntl.LOCK_EX)
        _claimed = os.getpid() % BLOCKS, handle
    return _claimed[0]


def domain(name: str) -> int:
    """The ROS domain id of ``name`` (one of :data:`NAMES`) in this run's block."""
    if name not in NAMES:
        raise KeyError(f"no ROS test domain named {name!r}; add it to ros_domains.NAMES")
    return 1 + claim_block() * BLOCK + NAMES.index(name)
