"""The test suite's ROS domains: a block per test run, claimed by file lock, one id per name."""

from __future__ import annotations

from pathlib import Path

import pytest
from ros_domains import BLOCK, BLOCKS, NAMES, claim, domain


def test_each_name_has_its_own_id_inside_the_ids_that_fast_dds_can_use() -> None:
    ids = [domain(name) for name in NAMES]
    assert len(set(ids)) == len(NAMES) <= BLOCK
    assert 1 <= min(ids) and max(ids) <= BLOCK * BLOCKS <= 101


def test_an_unknown_name_is_an_error() -> None:
    with pytest.raises(KeyError, match=r"add it to ros_domains\.NAMES"):
        domain("no_such_test")


def test_runs_side_by_side_claim_different_blocks_and_a_closed_run_frees_its_block(tmp_path: Path) -> None:
    first, second = claim(tmp_path, 2), claim(tmp_path, 2)
    assert first is not None and second is not None
    assert (first[0], second[0]) == (0, 1)
    assert claim(tmp_path, 2) is None  # both held
    first[1].close()  # that run ended
    third = claim(tmp_path, 2)
    assert third is not None and third[0] == 0
    second[1].close()
    third[1].close()
