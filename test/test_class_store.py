"""Tests of ClassStore: exact round trips, atomic writes, corrupt files set aside and never deleted."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from amp_ros import class_store
from amp_ros.class_store import STATE_FILE, ClassStore
from amp_ros.errors import StateError
from amp_ros.proxy_set import ProxySet
from amp_ros.taught_classes import TaughtClasses


def _state(classes: int = 2, channels: tuple[int, ...] = (16, 32, 32), seed: int = 0) -> TaughtClasses:
    generator = torch.Generator().manual_seed(seed)
    names = tuple(f"class {i} ☕" for i in range(classes))
    ids = tuple(range(2, 2 + classes))
    objects = ProxySet(names, ids, tuple(torch.randn(classes, c, generator=generator) for c in channels))
    backgrounds = tuple(
        ProxySet(tuple(f"4x4:{j}" for j in cells), cells,
                 tuple(torch.randn(len(cells), c, generator=generator) for c in channels))
        for cells in ((0, 3, 15), (1,), (2, 4))[:classes]
    )
    return TaughtClasses(objects, backgrounds)


def _assert_same(loaded: TaughtClasses | None, saved: TaughtClasses) -> None:
    assert loaded is not None
    assert loaded.ids == saved.ids and loaded.names == saved.names
    pairs = [(loaded.objects, saved.objects), *zip(loaded.backgrounds, saved.backgrounds, strict=True)]
    for got_set, want_set in pairs:
        assert got_set.names == want_set.names and got_set.ids == want_set.ids
        assert len(got_set.weights) == len(want_set.weights)
        for got, want in zip(got_set.weights, want_set.weights):
            assert got.dtype == want.dtype and torch.equal(got, want)


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_nothing_saved_loads_none(tmp_path: Path) -> None:
    """No state file (or no directory) means nothing was taught: None, not an error."""
    assert ClassStore(tmp_path / "missing").load() is None


def test_round_trip_is_exact(tmp_path: Path) -> None:
    """Ids, names (unicode) and every object and background weight bit come back exactly."""
    store = ClassStore(tmp_path / "state")
    state = _state()
    store.save(state)
    _assert_same(ClassStore(tmp_path / "state").load(), state)


def test_round_trip_of_no_classes(tmp_path: Path) -> None:
    """After forgetting every class the (empty) state still saves and loads."""
    store = ClassStore(tmp_path)
    state = _state(classes=0)
    store.save(state)
    _assert_same(store.load(), state)


def test_save_replaces_the_previous_state(tmp_path: Path) -> None:
    """A second save replaces the first one."""
    store = ClassStore(tmp_path)
    store.save(_state(seed=0))
    newer = _state(classes=3, seed=1)
    store.save(newer)
    _assert_same(store.load(), newer)


def test_state_dir_expands_user(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``~`` in the state directory (the node's default ~/.ros/amp_ros) is the home folder."""
    monkeypatch.setenv("HOME", str(tmp_path))
    assert ClassStore("~/.ros/amp_ros").path == tmp_path / ".ros" / "amp_ros" / STATE_FILE


def test_atomic_write_leaves_no_temporary_files(tmp_path: Path) -> None:
    """After saves, the directory holds the state file and nothing else."""
    store = ClassStore(tmp_path)
    for seed in range(3):
        store.save(_state(seed=seed))
    assert _files(tmp_path) == [STATE_FILE]


def test_failed_write_keeps_the_old_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that fails half-way raises StateError, removes its temp file, keeps the old file."""
    store = ClassStore(tmp_path)
    old = _state(seed=0)
    store.save(old)
    before = store.path.read_bytes()

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(StateError, match=r"cannot write .*No space left"):
        store.save(_state(seed=1))
    monkeypatch.undo()
    assert _files(tmp_path) == [STATE_FILE]
    assert store.path.read_bytes() == before
    _assert_same(store.load(), old)


def test_serialisation_error_is_a_state_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """safetensors reports I/O errors (disk full, ...) as SafetensorError: still a StateError."""
    store = ClassStore(tmp_path)
    store.save(_state(seed=0))
    before = store.path.read_bytes()

    def failing_save_file(*args: object, **kwargs: object) -> None:
        raise SafetensorError("Error while serializing: I/O error: No space left on device")

    monkeypatch.setattr(class_store, "save_file", failing_save_file)
    with pytest.raises(StateError, match="No space left"):
        store.save(_state(seed=1))
    assert _files(tmp_path) == [STATE_FILE] and store.path.read_bytes() == before


def test_unwritable_state_dir_is_a_state_error(tmp_path: Path) -> None:
    """A state_dir that cannot be created is reported as StateError (the node answers, not dies)."""
    blocker = tmp_path / "a file"
    blocker.write_text("not a directory")
    with pytest.raises(StateError, match="cannot write"):
        ClassStore(blocker / "state").save(_state())


def _garbage(path: Path) -> None:
    path.write_bytes(b"\x00\x01garbage, not safetensors" * 20)


def _other_format(path: Path) -> None:
    save_file({"level0": torch.zeros(1, 4)}, str(path), metadata={"format": "something/else"})


def _old_format(path: Path) -> None:
    """What amp_ros wrote before taught classes had their own background."""
    classes = '[{"id": 2, "name": "cup"}]'
    save_file({"level0": torch.ones(1, 16)}, str(path),
              metadata={"format": "amp_ros.taught_classes/1", "classes": classes, "log_scale": "2.3"})


def _metadata_of_a_valid_file(path: Path) -> dict[str, str]:
    ClassStore(path.parent).save(_state())
    with safe_open(str(path), framework="pt") as handle:
        return handle.metadata()


def _nan_weights(path: Path) -> None:
    metadata = _metadata_of_a_valid_file(path)
    state = _state()
    tensors = {f"object.level{i}": w.clone() for i, w in enumerate(state.objects.weights)}
    for row, background in enumerate(state.backgrounds):
        tensors.update({f"background{row}.level{i}": w.clone() for i, w in enumerate(background.weights)})
    tensors["background1.level1"][0, 0] = float("nan")
    save_file(tensors, str(path), metadata=metadata)


def _shape_mismatch(path: Path) -> None:
    metadata = _metadata_of_a_valid_file(path)  # two classes
    save_file({"object.level0": torch.zeros(3, 16), "background0.level0": torch.zeros(3, 16)}, str(path),
              metadata=metadata)


def _truncated(path: Path) -> None:
    ClassStore(path.parent).save(_state())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _empty(path: Path) -> None:
    path.write_bytes(b"")


@pytest.mark.parametrize(
    "corrupt", [_garbage, _other_format, _old_format, _nan_weights, _shape_mismatch, _truncated, _empty],
    ids=["garbage", "other format", "old format", "NaN weights", "shape mismatch", "truncated", "empty"],
)
def test_corrupt_file_is_moved_aside(tmp_path: Path, corrupt: Callable[[Path], None]) -> None:
    """An unreadable file raises StateError naming where it went; its bytes survive there."""
    store = ClassStore(tmp_path)
    corrupt(store.path)
    original = store.path.read_bytes()
    with pytest.raises(StateError, match=r"unreadable.*moved it to") as raised:
        store.load()
    aside = [p for p in tmp_path.iterdir() if p.name.startswith(f"{STATE_FILE}.corrupt-")]
    assert len(aside) == 1 and str(aside[0]) in str(raised.value)
    assert aside[0].read_bytes() == original
    assert not store.path.exists()
    assert store.load() is None  # the node then starts with no taught classes
    store.save(_state())  # and teaching again works beside the set-aside file
    assert store.load() is not None and aside[0].read_bytes() == original


def test_corrupt_files_never_overwrite_each_other(tmp_path: Path) -> None:
    """Two corrupt files set aside in the same second are both kept."""
    store = ClassStore(tmp_path)
    contents = [b"first corrupt file", b"second corrupt file", b"third"]
    for content in contents:
        store.path.write_bytes(content)
        with pytest.raises(StateError):
            store.load()
    aside = [p for p in tmp_path.iterdir() if p.name.startswith(f"{STATE_FILE}.corrupt-")]
    assert sorted(p.read_bytes() for p in aside) == sorted(contents)
