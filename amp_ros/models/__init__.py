"""The models shipped with amp_ros: ``amp_ros/models/<name>/`` (config.json + model.safetensors).

``default`` is what the node loads; other shipped variants are selected by name (the node's
``checkpoint`` parameter, ``--checkpoint`` of the CLIs), any other value is a folder path.
"""

from __future__ import annotations

from pathlib import Path

from amp_ros.errors import CheckpointError

MODELS = Path(__file__).resolve().parent
DEFAULT_MODEL = MODELS / "default"


def shipped_models() -> list[str]:
    """Names of the model folders shipped with the package."""
    return sorted(p.name for p in MODELS.iterdir() if (p / "config.json").is_file())


def default_checkpoint_path() -> Path:
    """The shipped default checkpoint; CheckpointError says plainly when none is shipped yet."""
    if not (DEFAULT_MODEL / "config.json").is_file():
        raise CheckpointError(
            f"no trained model at {DEFAULT_MODEL}: train one with `amp-train` and ship it with "
            "`python -m amp_ros.training.ship`, or pass a checkpoint explicitly"
        )
    return DEFAULT_MODEL


def resolve_checkpoint(value: str | Path | None) -> Path:
    """'' or None → the default model; a shipped model's name → its folder; else a path."""
    if value is None or str(value) == "":
        return default_checkpoint_path()
    if str(value) in shipped_models():
        return MODELS / str(value)
    return Path(value).expanduser()
