"""How recorded files (metrics.json, shipped configs) name paths: never by a folder of this machine.

A shipped model goes by its name, a path inside this repository by its repo-relative form; any
other path is recorded as the user gave it.
"""

from __future__ import annotations

from pathlib import Path

from amp_ros.models import MODELS

REPO = Path(__file__).resolve().parent.parent


def repo_relative(path: str | Path) -> str:
    """``path`` relative to the repository when it lies inside it, else as given."""
    resolved = Path(path).resolve()
    return resolved.relative_to(REPO).as_posix() if resolved.is_relative_to(REPO) else str(path)


def checkpoint_label(path: str | Path) -> str:
    """A checkpoint as recorded: a shipped model by name, else :func:`repo_relative`."""
    resolved = Path(path).resolve()
    return resolved.name if resolved.parent == MODELS else repo_relative(path)
