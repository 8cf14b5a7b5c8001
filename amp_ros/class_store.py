"""Persistence of taught classes: one safetensors file in a state directory, written atomically.

The file holds each class's object proxy and its background cells' proxies per head level, as
taught (not their per-video adaptation), with the class names, ids and cells in its metadata.

A file that cannot be read is moved aside (``*.corrupt-<time>``) and reported, never deleted,
so a bad file neither crashes the node nor destroys what the operator taught.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from amp_ros.atomic_write import atomic_path
from amp_ros.errors import InputError, StateError
from amp_ros.proxy_set import ProxySet
from amp_ros.taught_classes import TaughtClasses, cell_id

STATE_FILE = "taught_classes.safetensors"
_FORMAT = "amp_ros.taught_classes/2"
_OLD_FORMATS = ("amp_ros.taught_classes/1",)  # one proxy per class, no background of its own


class ClassStore:
    """Saves and loads the taught classes (ids, names, object and background-cell proxies)."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory).expanduser()
        self.path = self.directory / STATE_FILE

    def save(self, taught: TaughtClasses) -> None:
        """Atomically replace the state file with ``taught`` (temp file, fsync, rename)."""
        tensors = {f"object.level{i}": w.detach().cpu().contiguous()
                   for i, w in enumerate(taught.objects.weights)}
        classes = []
        for row, (name, class_id) in enumerate(zip(taught.names, taught.ids)):
            background = taught.backgrounds[row]
            classes.append({"id": class_id, "name": name, "cells": list(background.names)})
            for i, w in enumerate(background.weights):
                tensors[f"background{row}.level{i}"] = w.detach().cpu().contiguous()
        metadata = {"format": _FORMAT, "classes": json.dumps(classes)}
        try:
            with atomic_path(self.path) as tmp:
                save_file(tensors, str(tmp), metadata=metadata)
        except (OSError, SafetensorError) as err:  # safetensors reports I/O errors as its own
            raise StateError(f"cannot write {self.path}: {err}") from err

    def load(self) -> TaughtClasses | None:
        """The saved classes, None if nothing was saved; StateError (file set aside) if corrupt."""
        if not self.path.exists():
            return None
        try:
            return self._read()
        except (SafetensorError, OSError, ValueError, KeyError, TypeError, InputError) as err:
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

    def _read(self) -> TaughtClasses:
        from safetensors import safe_open

        with safe_open(str(self.path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        found = metadata.get("format")
        if found in _OLD_FORMATS:
            raise ValueError(f"written by an older amp_ros ({found}) without background proxies; "
                             "teach the classes again")
        if found != _FORMAT:
            raise ValueError(f"not a taught-classes file (format {found!r})")
        classes = json.loads(metadata["classes"])
        names = tuple(str(c["name"]) for c in classes)
        tensors = load_file(str(self.path))
        levels = sum(1 for key in tensors if key.startswith("object.level"))

        def weights(prefix: str) -> tuple[torch.Tensor, ...]:
            found = tuple(tensors[f"{prefix}.level{i}"] for i in range(levels))
            if not found or any(not torch.isfinite(w).all() for w in found):
                raise ValueError(f"{prefix} weights are missing or contain NaN or inf")
            return found

        objects = ProxySet(names, tuple(int(c["id"]) for c in classes), weights("object"))
        backgrounds = tuple(
            ProxySet(tuple(map(str, c["cells"])), tuple(cell_id(str(cell)) for cell in c["cells"]),
                     weights(f"background{row}"))
            for row, c in enumerate(classes)
        )
        return TaughtClasses(objects, backgrounds)
