"""Shipping a checkpoint as the default model keeps it verifiable and records its scores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from amp_ros.checkpoint import load_checkpoint
from amp_ros.training.ship import main


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
