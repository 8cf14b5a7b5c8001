"""Persistence of taught classes: one safetensors file in a state directory, written atomically.

A file that cannot be read is moved aside (``*.corrupt-<time>``) and reported, never deleted,
so a bad file neither crashes the node nor destroys what the operator taught.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from amp_ros.classifier import ClassifierState
from amp_ros.errors import StateError

STATE_FILE = "taught_classes.safetensors"
_FORMAT = "amp_ros.taught_classes/1"


class ClassStore:
    """Saves and loads the taught classes (ids, names, one proxy per head level)."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory).expanduser()
        self.path = self.directory / STATE_FILE

    def save(self, state: ClassifierState) -> None:
        """Atomically replace the state file with ``state`` (temp file, fsync, rename)."""
        tensors = {f"level{i}": w.detach().cpu().contiguous() for i, w in enumerate(state.weights)}
        metadata = {
            "format": _FORMAT,
            "classes": json.dumps([{"id": i, "name": n} for i, n in zip(state.ids, state.names)]),
            "log_scale": repr(state.log_scale),
        }
        tmp = self.path.with_name(f".{STATE_FILE}.{os.getpid()}.tmp")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            save_file(tensors, str(tmp), metadata=metadata)
            with tmp.open("rb") as handle:
                os.fsync(handle.fileno())
            tmp.replace(self.path)
        except (OSError, SafetensorError) as err:  # safetensors reports I/O errors as its own
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise StateError(f"cannot write {self.path}: {err}") from err

    def load(self) -> ClassifierState | None:
        """The saved classes, None if nothing was saved; StateError (file set aside) if corrupt."""
        if not self.path.exists():
            return None
        try:
            return self._read()
        except (SafetensorError, OSError, ValueError, KeyError, TypeError) as err:
            aside = self._set_aside()
            raise StateError(f"{self.path} is unreadable ({err}); moved it to {aside}") from err

    def _set_aside(self) -> Path:
        """Rename the state file to a ``*.corrupt-<time>[-n]`` name that no other file has."""
        stem = f"{STATE_FILE}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}"
        aside, n = self.path.with_name(stem), 0
        while aside.exists():  # one second, several corrupt files: never overwrite one
            n += 1
            aside = self.path.with_name(f"{stem}-{n}")
        try:
            self.path.rename(aside)
        except OSError as err:
            raise StateError(f"{self.path} is unreadable and cannot be moved aside: {err}") from err
        return aside

    def _read(self) -> ClassifierState:
        from safetensors import safe_open

        with safe_open(str(self.path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        if metadata.get("format") != _FORMAT:
            raise ValueError(f"not a taught-classes file (format {metadata.get('format')!r})")
        classes = json.loads(metadata["classes"])
        tensors = load_file(str(self.path))
        weights = tuple(tensors[f"level{i}"] for i in range(len(tensors)))
        if any(w.dim() != 2 or w.shape[0] != len(classes) for w in weights) or not weights:
            raise ValueError("tensor shapes do not match the class list")
        if any(not torch.isfinite(w).all() for w in weights):
            raise ValueError("weights contain NaN or inf")
        return ClassifierState(
            ids=tuple(int(c["id"]) for c in classes),
            names=tuple(str(c["name"]) for c in classes),
            weights=weights,
            log_scale=float(metadata["log_scale"]),
        )
