"""The imprintable multi-resolution classifier: bias-free cosine 1×1 heads on several levels.

Each class has one unit weight vector (its proxy) per feature level. A level's logits are the
cosines between its L2-normalised features and the class proxies; they are upsampled bilinearly
to the output size, summed over levels and multiplied by one shared scale (temperature). Learned
and imprinted weights therefore live on the same scale, so imprinting and adapting never tip the
balance between classes (the scale-mismatch pitfall of the authors' code).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from amp_ros.errors import InputError, UnknownClassError
from amp_ros.proxies import blend


@dataclass(frozen=True)
class ClassifierState:
    """A snapshot of the classifier's classes: ids, names and one K×C_l weight per level."""

    ids: tuple[int, ...]
    names: tuple[str, ...]
    weights: tuple[torch.Tensor, ...]
    log_scale: float


class ImprintableClassifier(nn.Module):
    """Cosine 1×1 heads on ``len(channels)`` feature levels, one output channel per class."""

    def __init__(self, channels: Sequence[int], class_names: Sequence[str], *, scale: float = 10.0):
        super().__init__()
        if not channels:
            raise InputError("the classifier needs at least one feature level")
        if len(set(class_names)) != len(class_names) or not class_names:
            raise InputError(f"class names must be unique and non-empty, got {list(class_names)}")
        self.channels = tuple(int(c) for c in channels)
        generator = torch.Generator().manual_seed(0)
        self.weights = nn.ParameterList(
            nn.Parameter(F.normalize(torch.randn(len(class_names), c, generator=generator), dim=1))
            for c in self.channels
        )
        self.log_scale = nn.Parameter(torch.tensor(math.log(scale)))
        self.class_names: list[str] = list(class_names)
        self.class_ids: list[int] = list(range(len(class_names)))

    @property
    def num_classes(self) -> int:
        """How many classes (output channels) the classifier has."""
        return len(self.class_names)

    def forward(
        self, features: Sequence[torch.Tensor], size: tuple[int, int], levels: Sequence[int] | None = None
    ) -> torch.Tensor:
        """Logits N×K×H×W at ``size`` = (H, W) from one N×C_l×h_l×w_l map per level.

        levels: indices of the levels to use (default all; for ablations). A subset's sum is
        rescaled by (all levels / used levels) so that logits keep their usual range.
        """
        if len(features) != len(self.weights):
            raise InputError(f"expected {len(self.weights)} feature levels, got {len(features)}")
        used = range(len(self.weights)) if levels is None else sorted(set(levels))
        if not used or any(not 0 <= level < len(self.weights) for level in used):
            raise InputError(f"levels must be a non-empty subset of 0..{len(self.weights) - 1}, got {levels}")
        total = None
        for level in used:
            feature, weight = features[level], self.weights[level]
            if feature.shape[1] != weight.shape[1]:
                raise InputError(
                    f"level {level} features have {feature.shape[1]} channels, "
                    f"the head expects {weight.shape[1]}"
                )
            cosine = F.conv2d(F.normalize(feature, dim=1), F.normalize(weight, dim=1)[:, :, None, None])
            cosine = F.interpolate(cosine, size=size, mode="bilinear", align_corners=False)
            total = cosine if total is None else total + cosine
        return self.log_scale.exp() * total * (len(self.weights) / len(used))

    def index(self, name: str) -> int:
        """Row of class ``name`` in the weights; UnknownClassError if there is none."""
        try:
            return self.class_names.index(name)
        except ValueError:
            raise UnknownClassError(
                f"unknown class {name!r}; known classes: {self.class_names}"
            ) from None

    def class_id(self, name: str) -> int:
        """The stable id of class ``name`` (what label images carry)."""
        return self.class_ids[self.index(name)]

    def proxies(self, name: str) -> list[torch.Tensor]:
        """The unit weight vector of class ``name`` at every level (copies)."""
        row = self.index(name)
        return [F.normalize(w.detach()[row], dim=0).clone() for w in self.weights]

    @torch.no_grad()
    def imprint(self, name: str, proxies: Sequence[torch.Tensor], class_id: int | None = None) -> int:
        """Add class ``name`` with one proxy per level as its weights; returns its id."""
        if name in self.class_names:
            raise InputError(f"class {name!r} exists already; adapt it instead")
        proxies = self._check_proxies(proxies)
        new_id = max(self.class_ids, default=-1) + 1 if class_id is None else int(class_id)
        if new_id in self.class_ids:
            raise InputError(f"class id {new_id} is taken")
        for level, proxy in enumerate(proxies):
            old = self.weights[level]
            row = F.normalize(proxy.to(old.dtype), dim=0)[None]
            self.weights[level] = nn.Parameter(torch.cat([old.detach(), row]), old.requires_grad)
        self.class_names.append(name)
        self.class_ids.append(new_id)
        return new_id

    @torch.no_grad()
    def adapt(self, name: str, proxies: Sequence[torch.Tensor], alpha: float) -> None:
        """Move class ``name`` towards the proxies: W ← α·P̂ + (1−α)·W, re-normalised (eq. 2)."""
        row = self.index(name)
        proxies = self._check_proxies(proxies)
        for weight, proxy in zip(self.weights, proxies):
            current = F.normalize(weight[row], dim=0) if alpha != 0.0 else weight[row]
            weight[row] = blend(current, proxy, alpha)

    @torch.no_grad()
    def remove(self, name: str) -> None:
        """Delete class ``name`` (its output channel at every level)."""
        row = self.index(name)
        keep = [i for i in range(self.num_classes) if i != row]
        for level, weight in enumerate(self.weights):
            self.weights[level] = nn.Parameter(weight.detach()[keep].clone(), weight.requires_grad)
        del self.class_names[row]
        del self.class_ids[row]

    def export_state(self) -> ClassifierState:
        """A detached copy of every class's weights, names and ids."""
        return ClassifierState(
            ids=tuple(self.class_ids),
            names=tuple(self.class_names),
            weights=tuple(w.detach().clone() for w in self.weights),
            log_scale=float(self.log_scale.detach()),
        )

    @torch.no_grad()
    def restore_state(self, state: ClassifierState) -> None:
        """Make the classifier exactly what ``state`` describes."""
        if len(state.weights) != len(self.weights):
            raise InputError(f"state has {len(state.weights)} levels, classifier {len(self.weights)}")
        for level, (weight, saved) in enumerate(zip(self.weights, state.weights)):
            if saved.dim() != 2 or saved.shape[0] != len(state.names) or saved.shape[1] != weight.shape[1]:
                raise InputError(
                    f"state level {level} has shape {tuple(saved.shape)}, expected "
                    f"({len(state.names)}, {weight.shape[1]})"
                )
            self.weights[level] = nn.Parameter(
                saved.to(weight.device, weight.dtype).clone(), weight.requires_grad
            )
        self.log_scale.fill_(state.log_scale)
        self.class_names = list(state.names)
        self.class_ids = list(state.ids)

    def _check_proxies(self, proxies: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        if len(proxies) != len(self.weights):
            raise InputError(f"expected one proxy per level ({len(self.weights)}), got {len(proxies)}")
        checked = []
        for level, (proxy, weight) in enumerate(zip(proxies, self.weights)):
            if proxy.shape != (weight.shape[1],):
                raise InputError(
                    f"level {level} proxy has shape {tuple(proxy.shape)}, expected ({weight.shape[1]},)"
                )
            if not torch.isfinite(proxy).all():
                raise InputError(f"level {level} proxy is not finite")
            checked.append(proxy.to(weight.device))
        return checked
