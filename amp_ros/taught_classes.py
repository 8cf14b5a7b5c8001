"""Classes taught by an operator: each one an object proxy against its own background proxy.

An imprinted proxy is not on a par with the trained heads (they learn discriminative directions,
not class means), so a taught class is never compared with the trained background: ``teach``
imprints the object from the labelled pixels *and* a background from the same frames' other
pixels, and a pixel belongs to the class where its object proxy beats its own background.
Both halves are :class:`~amp_ros.proxy_set.ProxySet` values with the same names and ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from amp_ros.errors import InputError
from amp_ros.proxy_set import ProxySet


@dataclass(frozen=True)
class TaughtClasses:
    """Taught classes: ``objects`` and ``backgrounds`` proxy sets with equal names and ids."""

    objects: ProxySet
    backgrounds: ProxySet

    def __post_init__(self) -> None:
        if self.objects.names != self.backgrounds.names or self.objects.ids != self.backgrounds.ids:
            raise InputError("taught objects and backgrounds must list the same classes and ids")
        if self.objects.channels != self.backgrounds.channels:
            raise InputError("taught objects and backgrounds must have the same feature channels")

    @classmethod
    def empty(cls, channels: Sequence[int]) -> TaughtClasses:
        """No class taught, for features of ``channels`` per level."""
        none = ProxySet((), (), tuple(torch.zeros(0, int(c)) for c in channels))
        return cls(none, none)

    @property
    def names(self) -> tuple[str, ...]:
        """Class names, in teaching order."""
        return self.objects.names

    @property
    def ids(self) -> tuple[int, ...]:
        """Class ids (what ``~/labels`` carries), in the order of :attr:`names`."""
        return self.objects.ids

    @property
    def channels(self) -> tuple[int, ...]:
        """Feature channels per level."""
        return self.objects.channels

    def __len__(self) -> int:
        return len(self.objects)

    def __contains__(self, name: object) -> bool:
        return name in self.objects

    def imprint(
        self, name: str, class_id: int, objects: Sequence[torch.Tensor], backgrounds: Sequence[torch.Tensor]
    ) -> TaughtClasses:
        """These classes plus ``name``, from one object and one background proxy per level."""
        return TaughtClasses(
            self.objects.imprint(name, objects, class_id),
            self.backgrounds.imprint(name, backgrounds, class_id),
        )

    def adapt(
        self, name: str, objects: Sequence[torch.Tensor], backgrounds: Sequence[torch.Tensor], alpha: float
    ) -> TaughtClasses:
        """Class ``name``'s object and background moved towards new proxies (AMP eq. 2)."""
        return TaughtClasses(
            self.objects.adapt(name, objects, alpha), self.backgrounds.adapt(name, backgrounds, alpha)
        )

    def remove(self, name: str) -> TaughtClasses:
        """These classes without ``name``."""
        return TaughtClasses(self.objects.remove(name), self.backgrounds.remove(name))
