"""Where the default model lives: ``amp_ros/models/default/`` (config.json + model.safetensors)."""

from __future__ import annotations

from pathlib import Path

from amp_ros.errors import CheckpointError

DEFAULT_MODEL = Path(__file__).resolve().parent / "default"


def default_checkpoint_path() -> Path:
    """The shipped checkpoint folder; CheckpointError says plainly when none is shipped yet."""
    if not (DEFAULT_MODEL / "config.json").is_file():
        raise CheckpointError(
            f"no trained model at {DEFAULT_MODEL}: train one with `amp-train` and copy its "
            "checkpoint folder there, or pass a checkpoint explicitly"
        )
    return DEFAULT_MODEL
