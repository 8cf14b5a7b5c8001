"""ROS domain ids of this test run, so that test runs side by side on one machine never meet.

Every test that starts DDS participants takes its domain from :func:`domain` by name: a fixed
offset within a block of ids that this process claims with a lock file (released when the process
ends, however it ends). Two checkouts' ``make test``, or a CI runner's parallel jobs, claim
different blocks; a fifth run at once waits until one of the four ends. The lock folder is fixed
(not TMPDIR, which parallel CI jobs often set apart) so that every run on the machine sees it.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from pathlib import Path

# One id per name, in this order within the claimed block; a name used twice would share a domain.
NAMES = (
    "interfaces", "colcon_build", "transport_env", "replay", "benchmark",
    "eval_run_masks", "eval_run_teach",
    "node_common", "node_flow", "node_restart", "node_corrupt", "node_slow", "node_stop",
    "node_bad_start", "node_auto_flow", "node_callbacks", "node_exit",
    "lifecycle", "lifecycle_namespaces", "lifecycle_compressed", "lifecycle_bad_configure",
)
BLOCK = 24
# Ids 1..96: Fast DDS's default ports (7400 + 250 × id + a few) stay below Linux's ephemeral range.
BLOCKS = 4
LOCK_FOLDER = Path(os.environ.get("AMP_TEST_LOCK_FOLDER", "/tmp"))
WAIT_POLL_S = 2.0

_claimed: tuple[int, int] | None = None  # (block, its locked file descriptor, open until exit)


def lock_path(folder: Path, block: int) -> Path:
    """The lock file of ``block`` in ``folder``."""
    return folder / f"amp_ros-test-domains-{block}.lock"


def _open_for_lock(path: Path) -> int | None:
    """A read-only descriptor of ``path`` (created readable and writable for every user, so that
    another user's run can lock it too); None where it cannot be opened."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)
    except OSError:  # another user's file in a sticky folder under fs.protected_regular, say
        try:
            descriptor = os.open(path, os.O_RDONLY)
        except OSError:
            return None
    try:
        os.fchmod(descriptor, 0o666)
    except OSError:
        pass  # not ours: its owner made it so already
    return descriptor


def claim(folder: Path, blocks: int = BLOCKS) -> tuple[int, int] | None:
    """The first of ``blocks`` that no other open lock file holds, and its now locked descriptor
    (held until closed; not inherited by child processes); None when every block is held."""
    for block in range(blocks):
        descriptor = _open_for_lock(lock_path(folder, block))
        if descriptor is None:
            continue
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            continue
        return block, descriptor
    return None


def claim_block() -> int:
    """The block of ids this process holds, claiming one on first use (waiting while all are)."""
    global _claimed
    if _claimed is None:
        _claimed = claim(LOCK_FOLDER)
    if _claimed is None:
        print(f"ros_domains: every one of the {BLOCKS} blocks of ROS domain ids in {LOCK_FOLDER} is "
              "held by another test run; waiting", file=sys.stderr, flush=True)
    while _claimed is None:
        time.sleep(WAIT_POLL_S)
        _claimed = claim(LOCK_FOLDER)
    return _claimed[0]


def domain(name: str) -> int:
    """The ROS domain id of ``name`` (one of :data:`NAMES`) in this run's block."""
    if name not in NAMES:
        raise KeyError(f"no ROS test domain named {name!r}; add it to ros_domains.NAMES")
    return 1 + claim_block() * BLOCK + NAMES.index(name)
