"""Checkpoints are verified data: safetensors + JSON, hash checked, config checked, no pickle."""

from __future__ import annotations

import hashlib
import inspect
import json
import shutil
from pathlib import Path

import pytest
import torch

import amp_ros.checkpoint as checkpoint_module
from amp_ros.checkpoint import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    InputConfig,
    load_checkpoint,
    save_checkpoint,
)
from amp_ros.errors import CheckpointError
from amp_ros.network import build_heads, two_stream_network


@pytest.fixture
def copy(tiny_checkpoint: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny checkpoint that a test may damage."""
    return Path(shutil.copytree(tiny_checkpoint, tmp_path / "checkpoint"))


def _edit_config(directory: Path, **changes: object) -> None:
    path = directory / CONFIG_FILE
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))


def _rehash(directory: Path) -> None:
    digest = hashlib.sha256((directory / WEIGHTS_FILE).read_bytes()).hexdigest()
    _edit_config(directory, sha256=digest)


def test_round_trip_gives_identical_outputs(tmp_path: Path) -> None:
    """save → load: same tensors, same features and logits, same input config, training kept."""
    torch.manual_seed(5)
    network = two_stream_network(width=0.0625, group_blocks=(1, 1, 1)).eval()
    heads = build_heads(network)
    with torch.no_grad():  # make BN statistics and the scale non-trivial so they must round-trip
        network.appearance.out_bns[0].running_mean.uniform_(-1, 1)
        network.appearance.out_bns[0].running_var.uniform_(0.5, 2)
        heads.log_scale.fill_(1.5)
    inputs = InputConfig(mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), max_side=96,
                         motion="flow-minus-camera")
    folder = save_checkpoint(tmp_path / "ck", network, heads, inputs, {"epochs": 3})
    loaded = load_checkpoint(folder)
    assert loaded.input == inputs
    assert loaded.training == {"epochs": 3}
    assert loaded.path == folder
    assert loaded.network.config == network.config
    assert not loaded.network.training
    for name, tensor in network.state_dict().items():
        assert torch.equal(loaded.network.state_dict()[name], tensor), name
    assert torch.equal(loaded.scale, torch.tensor(1.5).exp())
    assert loaded.proxies.names == ("background", "object") and loaded.proxies.ids == (0, 1)
    assert all(torch.equal(a, b.detach()) for a, b in zip(loaded.proxies.weights, heads.weights))
    image = torch.randn(1, 3, 11, 14, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(loaded.network(image, image), network(image, image)))


def test_config_records_format_and_hash(tiny_checkpoint: Path) -> None:
    """config.json carries format, architecture, network, input and the weights' sha256."""
    config = json.loads((tiny_checkpoint / CONFIG_FILE).read_text())
    assert config["format"] == "amp_ros.checkpoint/1"
    assert config["architecture"] == "two_stream"
    assert config["network"]["width"] == 0.0625
    assert config["input"]["max_side"] == 64
    assert config["input"]["motion"] == "flow"
    digest = hashlib.sha256((tiny_checkpoint / WEIGHTS_FILE).read_bytes()).hexdigest()
    assert config["sha256"] == digest


def test_class_count_disagreeing_with_tensors(copy: Path) -> None:
    """Three class names in the config, two rows in the heads: named shape mismatch."""
    config = json.loads((copy / CONFIG_FILE).read_text())
    config["network"]["class_names"] = ["background", "object", "cup"]
    (copy / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(
        CheckpointError,
        match=r"disagrees with its config: shape mismatch classifier\.weights\.0: "
        r"config needs \(3, 16\), file has \(2, 16\)",
    ):
        load_checkpoint(copy)


def test_width_disagreeing_with_tensors(copy: Path) -> None:
    """Width ⅛ in the config, width 1/16 tensors: rejected, naming a mismatched tensor."""
    config = json.loads((copy / CONFIG_FILE).read_text())
    config["network"]["width"] = 0.125
    (copy / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(
        CheckpointError,
        match=r"shape mismatch appearance\.group1\.0\.bn2\.bias: config needs \(16,\), file has \(8,\)",
    ):
        load_checkpoint(copy)


def test_missing_and_extra_tensors(copy: Path) -> None:
    """Deeper config (more units) than the tensors: the missing tensors are named."""
    config = json.loads((copy / CONFIG_FILE).read_text())
    config["network"]["trunk_dilations"] = [2, 4, 8]
    (copy / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"missing tensors \['trunk\.2\.bn1\.bias'"):
        load_checkpoint(copy)
    config["network"]["trunk_dilations"] = [2]
    (copy / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"unexpected tensors \['trunk\.1\.bn1\.bias'"):
        load_checkpoint(copy)


@pytest.mark.parametrize("keep", [0, 4, 8, 100, 0.5])
def test_truncated_weights_are_a_checkpoint_error(copy: Path, keep: float) -> None:
    """Truncated safetensors (hash updated so the parser sees it): CheckpointError, no crash."""
    weights = copy / WEIGHTS_FILE
    data = weights.read_bytes()
    weights.write_bytes(data[: int(len(data) * keep) if keep < 1 else int(keep)])
    _rehash(copy)
    with pytest.raises(CheckpointError, match="is not a readable safetensors file"):
        load_checkpoint(copy)


def test_garbage_weights_are_a_checkpoint_error(copy: Path) -> None:
    """A pickle (or anything else) in place of safetensors is refused, never unpickled."""
    weights = copy / WEIGHTS_FILE
    torch.save({"x": torch.ones(1)}, weights)
    _rehash(copy)
    with pytest.raises(CheckpointError, match="is not a readable safetensors file"):
        load_checkpoint(copy)


def test_sha256_mismatch(copy: Path) -> None:
    """One flipped byte in the weights: the hash check rejects the file."""
    weights = copy / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"model\.safetensors does not match the sha256 in"):
        load_checkpoint(copy)


def test_missing_sha256_is_refused(copy: Path) -> None:
    """A config without a hash cannot be verified, so it is not loaded."""
    config = json.loads((copy / CONFIG_FILE).read_text())
    del config["sha256"]
    (copy / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"has no sha256 of model\.safetensors"):
        load_checkpoint(copy)


def test_invalid_json(copy: Path) -> None:
    """A config that is not JSON (or not UTF-8) is a CheckpointError."""
    (copy / CONFIG_FILE).write_text('{"format": ')
    with pytest.raises(CheckpointError, match=r"config\.json is not valid JSON"):
        load_checkpoint(copy)
    (copy / CONFIG_FILE).write_bytes(b"\xff\xfe\x00")
    with pytest.raises(CheckpointError, match="is not valid JSON"):
        load_checkpoint(copy)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"format": "other/2"}, "expected format 'amp_ros.checkpoint/1'"),
        ({"architecture": "resnet"}, "unknown architecture 'resnet'"),
        ({"network": {"width": 0.0625, "depth": 3}}, "invalid network config: unknown network"),
        ({"network": "wide"}, "invalid network config"),
        ({"input": ["not", "a", "dict"]}, "invalid network config"),
        ({"input": {"mean": [0.5, 0.5]}}, "mean and std need 3 values"),
        ({"input": {"std": [0.0, 1.0, 1.0]}}, "std must be positive"),
        ({"input": {"motion": "depth"}}, "input motion must be one of"),
    ],
)
def test_invalid_config_values(copy: Path, changes: dict, message: str) -> None:
    """Wrong format, architecture, network or input settings: CheckpointError with the reason."""
    _edit_config(copy, **changes)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(copy)


def test_config_that_is_not_an_object(copy: Path) -> None:
    """A JSON list instead of an object is refused."""
    (copy / CONFIG_FILE).write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="expected format"):
        load_checkpoint(copy)


def test_missing_files(copy: Path) -> None:
    """Missing weights or config: CheckpointError naming the file."""
    (copy / WEIGHTS_FILE).unlink()
    with pytest.raises(CheckpointError, match=r"checkpoint file missing: .*model\.safetensors"):
        load_checkpoint(copy)
    with pytest.raises(CheckpointError, match=r"checkpoint file missing: .*config\.json"):
        load_checkpoint(copy.parent / "nowhere")


def test_never_uses_torch_load(tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading never unpickles: torch.load is not in the source and is never called."""
    assert "torch.load" not in inspect.getsource(checkpoint_module)
    assert "pickle" not in inspect.getsource(checkpoint_module).replace("never unpickles", "")

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("torch.load called")

    monkeypatch.setattr(torch, "load", forbidden)
    assert len(load_checkpoint(tiny_checkpoint).proxies) == 2
