"""The models shipped with amp_ros: ``amp_ros/models/<name>/`` (config.json + model.safetensors).

The file ``amp_ros/models/DEFAULT`` names the model the node loads by default; other shipped
models are selected by name (the node's ``checkpoint`` parameter, ``--checkpoint`` of the CLIs),
and any other value is a checkpoint folder.
"""

from __future__ import annotations

from pathlib import Path

from amp_ros.errors import CheckpointError

MODELS = Path(__file__).resolve().parent


def shipped_models() -> list[str]:
    """Names of the model folders shipped with the package."""
    return sorted(p.name for p in MODELS.iterdir() if (p / "config.json").is_file())


def default_model_name() -> str | None:
    """The name written in ``amp_ros/models/DEFAULT``, or None when there is none."""
    marker = MODELS / "DEFAULT"
    return marker.read_text().strip() or None if marker.is_file() else None


def default_checkpoint_path() -> Path:
    """The shipped default checkpoint; CheckpointError says plainly when none is shipped yet."""
    name = default_model_name()
    if name is None or not (MODELS / name / "config.json").is_file():
        raise CheckpointError(
            f"no trained model in {MODELS} (DEFAULT names {name!r}): train one with `amp-train` "
            "and ship it with `python -m amp_ros.training.ship`, or pass a checkpoint explicitly"
        )
    return MODELS / name


def resolve_checkpoint(value: str | Path | None) -> Path:
    """'' or None → the default model; a shipped model's name → its folder; else a path."""
    if value is None or str(value) == "":
        return default_checkpoint_path()
    if str(value) in shipped_models():
        return MODELS / str(value)
    return Path(value).expanduser()
