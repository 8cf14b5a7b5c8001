"""AdamW over the trainable parameters, the learning-rate schedule, and the optimizer's state
as safetensors (nothing pickled)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from amp_ros.atomic_write import atomic_path
from amp_ros.training.model import TrainingModel, is_head_parameter

APPEARANCE_TRUNK_PREFIX = "network.appearance.trunk."  # a pretrained stream's trunk

WARMUP_START = 0.1  # the warm-up starts at 10 % of the base learning rate
FINAL_LR = 0.02  # the cosine decay ends at 2 % of the base learning rate
EXTRA_PREFIX = "rng."  # safetensors names of the extra tensors saved with the optimizer
STATE_PREFIX = "state."


def make_optimizer(model: TrainingModel, lr: float, weight_decay: float,
                   appearance_lr_scale: float = 1.0) -> torch.optim.AdamW:
    """AdamW over the trainable parameters; no weight decay on BN, the cosine heads (unit rows)
    or the logit scale; a trainable pretrained appearance trunk at ``appearance_lr_scale`` × lr
    (each group's ``lr_scale``, which :func:`set_learning_rate` applies)."""
    groups: dict[tuple[bool, float], list[torch.nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        decays = param.dim() > 1 and not is_head_parameter(name)
        scale = appearance_lr_scale if name.startswith(APPEARANCE_TRUNK_PREFIX) else 1.0
        groups.setdefault((decays, scale), []).append(param)
    ordered = sorted(groups.items(), key=lambda item: (not item[0][0], -item[0][1]))
    return torch.optim.AdamW(
        [{"params": params, "weight_decay": weight_decay if decays else 0.0, "lr": lr * scale,
          "lr_scale": scale} for (decays, scale), params in ordered],
        lr=lr,
    )


def learning_rate(step: int, total: int, base: float, warmup: int) -> float:
    """Linear warm-up from 10 % to ``base``, then cosine decay to 2 % of ``base``."""
    if step < warmup:
        return base * (WARMUP_START + (1.0 - WARMUP_START) * step / max(1, warmup))
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (FINAL_LR + (1.0 - FINAL_LR) * 0.5 * (1.0 + math.cos(math.pi * progress)))


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Each parameter group at ``lr`` × its ``lr_scale``."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)


def save_optimizer(
    path: Path, optimizer: torch.optim.Optimizer, extra: dict[str, torch.Tensor]
) -> dict[str, Any]:
    """Adam moments (and ``extra`` tensors) as safetensors, written atomically; returns the
    JSON-able rest (step counts and parameter groups)."""
    state = optimizer.state_dict()
    tensors = {f"{EXTRA_PREFIX}{k}": v.contiguous() for k, v in extra.items()}
    steps = {}
    for index, entry in state["state"].items():
        for key, value in entry.items():
            if key == "step":
                steps[str(index)] = float(value)
            else:
                tensors[f"{STATE_PREFIX}{index}.{key}"] = value.detach().cpu().contiguous()
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp))
    return {"steps": steps, "param_groups": state["param_groups"]}


def load_optimizer(
    path: Path, optimizer: torch.optim.Optimizer, meta: dict[str, Any]
) -> dict[str, torch.Tensor]:
    """Inverse of :func:`save_optimizer`; returns the ``extra`` tensors. A ValueError says the
    saved state does not fit ``optimizer``."""
    tensors = load_file(str(path))
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        if name.startswith(STATE_PREFIX):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    for index, step in meta["steps"].items():
        state.setdefault(int(index), {})["step"] = torch.tensor(step, dtype=torch.float32)
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    return {k[len(EXTRA_PREFIX):]: v for k, v in tensors.items() if k.startswith(EXTRA_PREFIX)}
