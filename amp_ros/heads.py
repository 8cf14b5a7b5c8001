"""The learnable heads used in training: bias-free cosine 1×1 classifiers on several levels.

Each class has one weight vector per feature level; logits are :func:`cosine_logits` of the
features and those rows at one learned scale (temperature), so learned rows and imprinted proxies
live on the same scale (the scale-mismatch pitfall of the authors' code). After training the
heads are exported as a :class:`~amp_ros.proxy_set.ProxySet`, the per-video state the pipeline
owns; at run time nothing changes the module.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from amp_ros.errors import InputError, UnknownClassError
from amp_ros.proxy_set import ProxySet, cosine_logits


class ProxyHeads(nn.Module):
    """Cosine 1×1 heads on ``len(channels)`` feature levels, one output channel per class."""

    def __init__(self, channels: Sequence[int], class_names: Sequence[str], *, scale: float = 10.0):
        super().__init__()
        if not channels:
            raise InputError("the heads need at least one feature level")
        if len(set(class_names)) != len(class_names) or not class_names:
            raise InputError(f"class names must be unique and non-empty, got {list(class_names)}")
        self.channels = tuple(int(c) for c in channels)
        self.class_names = tuple(class_names)
        generator = torch.Generator().manual_seed(0)
        self.weights = nn.ParameterList(
            nn.Parameter(F.normalize(torch.randn(len(class_names), c, generator=generator), dim=1))
            for c in self.channels
        )
        self.log_scale = nn.Parameter(torch.tensor(math.log(scale)))

    @property
    def scale(self) -> torch.Tensor:
        """The learned logit scale exp(log_scale), detached (a 0-d tensor)."""
        return self.log_scale.detach().exp()

    def index(self, name: str) -> int:
        """Output channel of class ``name``."""
        try:
            return self.class_names.index(name)
        except ValueError:
            raise UnknownClassError(f"unknown class {name!r}; known: {list(self.class_names)}") from None

    def forward(
        self, features: Sequence[torch.Tensor], size: tuple[int, int], levels: Sequence[int] | None = None
    ) -> torch.Tensor:
        """Logits N×K×H×W at ``size`` from one N×C_l×h_l×w_l map per level (see cosine_logits)."""
        return cosine_logits(features, self._live_set(), self.log_scale.exp(), size, levels)

    def proxy_set(self) -> ProxySet:
        """The heads as a proxy set (detached copies; ids 0…K−1 in class order)."""
        return ProxySet(
            self.class_names,
            tuple(range(len(self.class_names))),
            tuple(w.detach().clone() for w in self.weights),
        )

    def _live_set(self) -> ProxySet:
        # The parameters themselves, so gradients flow in training.
        return ProxySet(self.class_names, tuple(range(len(self.class_names))), tuple(self.weights))
