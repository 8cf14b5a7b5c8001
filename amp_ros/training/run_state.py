"""What a run keeps between epochs and between invocations: seeds and RNG states, the resumable
state of ``last/``, the epoch log, and the provenance recorded with every checkpoint.

Files of an output folder (written atomically): ``last/trainer_state.json`` (:class:`RunState`:
epoch, best score, log, optimizer step counts, numpy and Python RNG states, commands, wall time,
appearance freezing and provenance), ``last/optimizer.safetensors`` (Adam moments and the torch
RNG state, :mod:`amp_ros.training.optimizer`) and ``log.json``.

Provenance is portable: no host name, no absolute path of this machine (absolute paths in the
recorded command are reduced to their last component, data folders go by dataset name).
"""

from __future__ import annotations

import json
import os
import platform
import random
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from amp_ros.atomic_write import atomic_write
from amp_ros.training import TrainingError
from amp_ros.training.optimizer import load_optimizer, save_optimizer

LAST, BEST = "last", "best"
OPTIMIZER_FILE = "optimizer.safetensors"
STATE_FILE = "trainer_state.json"
LOG_FILE = "log.json"
TORCH_RNG = "torch"  # name of the torch RNG state among the optimizer file's extra tensors


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python's, numpy's and torch's global RNGs; returns the sampler's generator."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


@dataclass
class RunState:
    """The resumable state of a run after ``epoch`` (``last/trainer_state.json``)."""

    epoch: int = 0
    best_j: float = -1.0
    log: list[dict[str, Any]] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0
    freeze_appearance: bool = False
    appearance_init: dict[str, Any] | None = None
    optimizer: dict[str, Any] = field(default_factory=dict)
    numpy_rng: dict[str, Any] = field(default_factory=dict)
    python_rng: list[Any] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "best_j": self.best_j, "log": self.log,
                "optimizer": self.optimizer, "numpy_rng": self.numpy_rng,
                "python_rng": self.python_rng, "wall_seconds": self.wall_seconds,
                "commands": self.commands, "freeze_appearance": self.freeze_appearance,
                "appearance_init": self.appearance_init}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunState:
        try:
            return cls(epoch=data["epoch"], best_j=data["best_j"], log=data["log"],
                       commands=list(data.get("commands", [])),
                       wall_seconds=data.get("wall_seconds", 0.0),
                       freeze_appearance=data.get("freeze_appearance", False),
                       appearance_init=data.get("appearance_init"), optimizer=data["optimizer"],
                       numpy_rng=data["numpy_rng"], python_rng=data["python_rng"])
        except (KeyError, TypeError) as err:
            raise TrainingError(f"trainer state lacks {err}") from err


def read_state(last: Path) -> RunState | None:
    """The state saved in ``last`` (a ``last/`` folder), or None when there is none yet."""
    path = last / STATE_FILE
    if not path.is_file():
        return None
    try:
        return RunState.from_json(json.loads(path.read_text()))
    except json.JSONDecodeError as err:
        raise TrainingError(f"{path} is not valid JSON: {err}") from err


def save_state(last: Path, state: RunState, optimizer: torch.optim.Optimizer,
               rng: np.random.Generator) -> None:
    """Fill ``state``'s optimizer and RNG fields from the live objects and write both files."""
    last.mkdir(parents=True, exist_ok=True)
    state.optimizer = save_optimizer(last / OPTIMIZER_FILE, optimizer,
                                     {TORCH_RNG: torch.get_rng_state()})
    state.numpy_rng = rng.bit_generator.state
    state.python_rng = list(random.getstate())
    write_json(last / STATE_FILE, state.to_json())


def restore_state(last: Path, state: RunState, optimizer: torch.optim.Optimizer,
                  rng: np.random.Generator) -> None:
    """Load the optimizer saved in ``last`` and put every RNG back where ``state`` left it."""
    try:
        extra = load_optimizer(last / OPTIMIZER_FILE, optimizer, state.optimizer)
    except (ValueError, KeyError, OSError) as err:
        raise TrainingError(f"cannot resume the optimizer of {last}: {err}") from err
    torch.set_rng_state(extra[TORCH_RNG])
    rng.bit_generator.state = state.numpy_rng
    version, internal, gauss = state.python_rng
    random.setstate((version, tuple(internal), gauss))


def write_json(path: Path, data: Any) -> None:
    """Atomically write ``data`` as indented JSON."""
    atomic_write(path, json.dumps(data, indent=2) + "\n")


def write_log(out: Path, command: str, state: RunState) -> None:
    """``log.json``: the commands and per-epoch figures of the run so far."""
    write_json(out / LOG_FILE, {"command": command, "commands": state.commands,
                                "log": state.log, "best_val_j": state.best_j})


# ------------------------------------------------------------------------------- provenance
def machine() -> dict[str, Any]:
    """What the run ran on (no host name)."""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next((ln.split(":", 1)[1].strip() for ln in handle if ln.startswith("model name")), cpu)
    except OSError:
        pass
    info = {"platform": platform.platform(), "cpu": cpu,
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "torch": torch.__version__}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def portable_path(path: str) -> str:
    """``path`` as given when relative; only its last component when absolute."""
    return Path(path).name if os.path.isabs(path) else path


def portable_command(prog: str, argv: Sequence[str]) -> str:
    """The command line, shell-quoted, with absolute paths reduced to their last component."""
    args = []
    for arg in argv:
        if arg.startswith("--") and "=" in arg:
            key, value = arg.split("=", 1)
            args.append(f"{key}={portable_path(value)}")
        else:
            args.append(portable_path(arg))
    return shlex.join([prog, *args])


def log_line(message: str) -> None:
    """Print a time-stamped progress line."""
    print(time.strftime("%H:%M:%S ") + message, flush=True)
