"""A proxy set: classes as plain data (names, stable ids, one weight vector per class per level).

The per-video state of AMP. The network only computes features; :func:`cosine_logits` turns
features and a proxy set into logits; the pipeline owns the sets and replaces them as it
imprints (eq. 1), adapts (eq. 2) and removes classes (``subset`` and ``merge`` rearrange sets).
A set is immutable: every change returns a new set, so a snapshot (for ``reset`` or
persistence) is just a reference.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from amp_ros.errors import InputError, UnknownClassError
from amp_ros.proxies import blend


@dataclass(frozen=True)
class ProxySet:
    """Classes ``names`` with ids ``ids`` and one K×C_l weight matrix per head level.

    Rows are normalised where they are used (learned rows need not be unit vectors; imprinted
    and adapted rows are).
    """

    names: tuple[str, ...]
    ids: tuple[int, ...]
    weights: tuple[torch.Tensor, ...]

    def __post_init__(self) -> None:
        if len(self.names) != len(self.ids):
            raise InputError(f"{len(self.names)} class names but {len(self.ids)} ids")
        if len(set(self.names)) != len(self.names) or len(set(self.ids)) != len(self.ids):
            raise InputError(f"class names and ids must be unique, got {self.names} / {self.ids}")
        if not self.weights:
            raise InputError("a proxy set needs at least one head level")
        for level, weight in enumerate(self.weights):
            if weight.dim() != 2 or weight.shape[0] != len(self.names):
                raise InputError(
                    f"level {level} weights have shape {tuple(weight.shape)}, expected "
                    f"({len(self.names)}, C)"
                )

    @property
    def channels(self) -> tuple[int, ...]:
        """Feature channels C_l of every level."""
        return tuple(int(w.shape[1]) for w in self.weights)

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def index(self, name: str) -> int:
        """Row of class ``name``; UnknownClassError if there is none."""
        try:
            return self.names.index(name)
        except ValueError:
            raise UnknownClassError(f"unknown class {name!r}; known classes: {list(self.names)}") from None

    def class_id(self, name: str) -> int:
        """The stable id of class ``name`` (what label images carry)."""
        return self.ids[self.index(name)]

    def proxies(self, name: str) -> list[torch.Tensor]:
        """The unit weight vector of class ``name`` at every level (copies)."""
        row = self.index(name)
        return [F.normalize(w[row], dim=0).clone() for w in self.weights]

    def imprint(self, name: str, proxies: Sequence[torch.Tensor], class_id: int) -> ProxySet:
        """A set with class ``name`` added, one unit proxy per level as its weights (eq. 1)."""
        if name in self.names:
            raise InputError(f"class {name!r} exists already; adapt it instead")
        proxies = self._check_proxies(proxies)
        weights = tuple(
            torch.cat([w, F.normalize(p.to(w.dtype), dim=0)[None]]) for w, p in zip(self.weights, proxies)
        )
        return ProxySet((*self.names, name), (*self.ids, int(class_id)), weights)

    def adapt(self, name: str, proxies: Sequence[torch.Tensor], alpha: float) -> ProxySet:
        """A set with class ``name`` moved towards the proxies: W ← α·P̂ + (1−α)·W, unit (eq. 2)."""
        row = self.index(name)
        proxies = self._check_proxies(proxies)
        weights = []
        for weight, proxy in zip(self.weights, proxies):
            current = F.normalize(weight[row], dim=0) if alpha != 0.0 else weight[row]
            updated = weight.clone()
            updated[row] = blend(current, proxy, alpha)
            weights.append(updated)
        return ProxySet(self.names, self.ids, tuple(weights))

    def remove(self, name: str) -> ProxySet:
        """A set without class ``name``."""
        row = self.index(name)
        return self.subset(n for i, n in enumerate(self.names) if i != row)

    def subset(self, names: Iterable[str]) -> ProxySet:
        """A set of the named classes only, in the order given."""
        rows = [self.index(n) for n in names]
        return ProxySet(
            tuple(self.names[r] for r in rows),
            tuple(self.ids[r] for r in rows),
            tuple(w[rows].clone() for w in self.weights),
        )

    def merge(self, other: ProxySet) -> ProxySet:
        """This set's classes followed by ``other``'s; names and ids must not collide."""
        if other.channels != self.channels:
            raise InputError(f"cannot merge proxy sets of channels {self.channels} and {other.channels}")
        return ProxySet(
            self.names + other.names,
            self.ids + other.ids,
            tuple(torch.cat([a, b.to(a.device, a.dtype)]) for a, b in zip(self.weights, other.weights)),
        )

    def to(self, device: torch.device | str) -> ProxySet:
        """The same set with its weights on ``device``."""
        return ProxySet(self.names, self.ids, tuple(w.to(device) for w in self.weights))

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


def cosine_logits(
    features: Sequence[torch.Tensor],
    proxies: ProxySet,
    scale: torch.Tensor | float,
    size: tuple[int, int],
    levels: Sequence[int] | None = None,
) -> torch.Tensor:
    """Logits N×K×H×W: per level the cosines between features and class proxies, bilinearly
    upsampled to ``size``, summed over levels and multiplied by the learned ``scale``.

    features: one N×C_l×h_l×w_l map per level. levels: the levels to use (default all; an
    ablation); a subset's sum is rescaled by (all levels / used levels) to keep the usual range.
    """
    weights = proxies.weights
    if len(features) != len(weights):
        raise InputError(f"expected {len(weights)} feature levels, got {len(features)}")
    used = range(len(weights)) if levels is None else sorted(set(levels))
    if not used or any(not 0 <= level < len(weights) for level in used):
        raise InputError(f"levels must be a non-empty subset of 0..{len(weights) - 1}, got {levels}")
    total = None
    for level in used:
        feature, weight = features[level], weights[level]
        if feature.shape[1] != weight.shape[1]:
            raise InputError(
                f"level {level} features have {feature.shape[1]} channels, the proxies {weight.shape[1]}"
            )
        cosine = F.conv2d(F.normalize(feature, dim=1), F.normalize(weight, dim=1)[:, :, None, None])
        cosine = F.interpolate(cosine, size=size, mode="bilinear", align_corners=False)
        total = cosine if total is None else total + cosine
    return scale * total * (len(weights) / len(used))
