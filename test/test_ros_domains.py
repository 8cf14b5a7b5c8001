"""The test suite's ROS domains: a block per test run, claimed by file lock, one id per name."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ros_domains import BLOCK, BLOCKS, NAMES, claim, domain, lock_path


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
    os.close(first[1])  # that run ended
    third = claim(tmp_path, 2)
    assert third is not None and third[0] == 0
    assert (lock_path(tmp_path, 0).stat().st_mode & 0o777) == 0o666  # another user may lock it too
    for _, descriptor in (second, third):
        os.close(descriptor)


def test_an_unopenable_lock_file_is_passed_over(tmp_path: Path) -> None:
    lock_path(tmp_path, 0).symlink_to(tmp_path / "gone" / "lock")  # can be neither made nor opened
    claimed = claim(tmp_path, 2)
    assert claimed is not None and claimed[0] == 1
    os.close(claimed[1])
