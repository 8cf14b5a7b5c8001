"""The Fast DDS transport amp_ros chooses (amp_ros/ros/dds_env.py) and its benchmark script.

The choice (README, "Transport"): amp_ros's shared-memory XML profile, unless the user picked a
transport already (FASTDDS_DEFAULT_PROFILES_FILE or FASTDDS_BUILTIN_TRANSPORTS). The script
scripts/transport_bench.py that measured it must keep running: one short case here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from ros_domains import domain

from amp_ros.ros.dds_env import (
    BUILTIN_TRANSPORTS_ENV,
    DISCOVERY_ENV,
    PROFILE_ENV,
    apply_dds_variables,
    child_env,
    dds_variables,
)

REPO = Path(__file__).resolve().parents[1]
DOMAIN_ID = domain("transport_env")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No DDS variables set; whatever a test sets is restored afterwards."""
    for key in (PROFILE_ENV, BUILTIN_TRANSPORTS_ENV, DISCOVERY_ENV):
        monkeypatch.delenv(key, raising=False)
    return monkeypatch


def test_the_shm_profile_is_the_default(clean_env: pytest.MonkeyPatch) -> None:
    """Nothing set: this process gets config/fastdds_shm.xml and localhost discovery."""
    apply_dds_variables()
    assert os.environ[PROFILE_ENV] == str(REPO / "config" / "fastdds_shm.xml")
    assert os.environ[DISCOVERY_ENV] == "LOCALHOST"
    assert BUILTIN_TRANSPORTS_ENV not in os.environ
    assert child_env(DOMAIN_ID)[PROFILE_ENV] == os.environ[PROFILE_ENV]


def test_a_users_transport_choice_is_kept(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA: no profile is added (it would turn the builtin
    transports off); an exported profile of the user's stays as it is."""
    clean_env.setenv(BUILTIN_TRANSPORTS_ENV, "LARGE_DATA")
    apply_dds_variables(localhost=False)
    assert PROFILE_ENV not in os.environ and os.environ[BUILTIN_TRANSPORTS_ENV] == "LARGE_DATA"
    clean_env.delenv(BUILTIN_TRANSPORTS_ENV)
    own = tmp_path / "mine.xml"
    clean_env.setenv(PROFILE_ENV, str(own))
    apply_dds_variables()
    assert os.environ[PROFILE_ENV] == str(own)
    assert dds_variables(localhost=False) == {PROFILE_ENV: str(REPO / "config" / "fastdds_shm.xml")}


def test_transport_bench_runs_one_case() -> None:
    """scripts/transport_bench.py, shm_profile at 480p for 1 s per phase: a table row with the
    frames delivered at 30 Hz and flat out (how many arrive depends on the load: only > 0 is
    checked here; README has the measured table)."""
    env = {key: value for key, value in os.environ.items()
           if key not in (PROFILE_ENV, BUILTIN_TRANSPORTS_ENV)}  # fmt: skip
    env["OMP_NUM_THREADS"] = "1"
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "transport_bench.py"), "--seconds", "1", "--cases",
         "shm_profile", "--sizes", "480p", "--domain", str(DOMAIN_ID)],
        capture_output=True, text=True, timeout=300, env=env, cwd=REPO, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| transport | frame | 30 Hz delivered |" in result.stdout
    row = re.search(r"^\| shm_profile \| 480p \| (\d+)/(\d+) \| .* \| (\d+) \(of (\d+) sent/s\) \|",
                    result.stdout, re.MULTILINE)  # fmt: skip
    assert row, result.stdout
    delivered, sent, flat_out, _ = (int(g) for g in row.groups())
    assert sent >= 5 and 0 < delivered <= sent and flat_out > 0, result.stdout
