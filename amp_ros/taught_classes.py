"""Classes taught by an operator: each one an object proxy against background proxies of its own.

An imprinted proxy is not on a par with the trained heads (they learn discriminative directions,
not class means), so a taught class is never compared with the trained background: ``teach``
imprints the object from the labelled pixels *and* its background from the same frames' other
pixels. One mean of a whole background is a poor rival (a pixel merely less background-like than
the average wins), so the background is pooled per cell of a grid over the frame
(``PipelineConfig.taught_background_grid``, 4 × 4 by default): up to 16 proxies, each an NMAP of
the background pixels in its cell. A pixel belongs to
the class where its object proxy beats the best of those.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from amp_ros.errors import InputError
from amp_ros.proxy_set import ProxySet

MIN_CELL_SHARE = 0.01  # a cell with less of the background than this has no proxy of its own


def background_cells(background: torch.Tensor, grid: int) -> dict[str, torch.Tensor]:
    """The background mask (K×H×W or H×W bool, k shots) split into grid cells over the frame.

    Returns {"<grid>x<grid>:<i>": mask of the background pixels in cell i} for the cells holding
    at least ``MIN_CELL_SHARE`` of the background pixels in every shot; cell i is row i // grid,
    column i % grid. The grid is in the name, so a class keeps the grid it was taught with.
    """
    shots = background if background.dim() == 3 else background[None]
    height, width = shots.shape[-2:]
    total = shots.flatten(1).sum(1)
    cells = {}
    for index in range(grid * grid):
        row, column = divmod(index, grid)
        cell = torch.zeros_like(shots)
        cell[:, row * height // grid:(row + 1) * height // grid,
             column * width // grid:(column + 1) * width // grid] = True
        cell &= shots
        if bool((cell.flatten(1).sum(1) >= MIN_CELL_SHARE * total).all()) and bool(cell.any()):
            cells[f"{grid}x{grid}:{index}"] = cell if background.dim() == 3 else cell[0]
    return cells


@dataclass(frozen=True)
class TaughtClasses:
    """Taught classes: ``objects`` (one row per class: names, ids) and, per class, a proxy set of
    its background cells (rows named ``<grid>x<grid>:<i>``, one grid per class)."""

    objects: ProxySet
    backgrounds: tuple[ProxySet, ...]

    def __post_init__(self) -> None:
        if len(self.backgrounds) != len(self.objects):
            raise InputError(f"{len(self.objects)} taught classes but {len(self.backgrounds)} backgrounds")
        for name, background in zip(self.objects.names, self.backgrounds):
            if background.channels != self.objects.channels or not len(background):
                raise InputError(f"the background of taught class {name!r} does not fit its object")
            grids = {_cell_grid(cell) for cell in background.names}
            if len(grids) != 1:
                raise InputError(f"the background cells of taught class {name!r} mix grids: "
                                 f"{list(background.names)}")

    @classmethod
    def empty(cls, channels: Sequence[int]) -> TaughtClasses:
        """No class taught, for features of ``channels`` per level."""
        return cls(ProxySet((), (), tuple(torch.zeros(0, int(c)) for c in channels)), ())

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

    def background(self, name: str) -> ProxySet:
        """The background proxies of class ``name``."""
        return self.backgrounds[self.objects.index(name)]

    def grid(self, name: str) -> int:
        """The grid (cells per side) class ``name``'s background was taught with."""
        return _cell_grid(self.background(name).names[0])

    def imprint(
        self, name: str, class_id: int, objects: Sequence[torch.Tensor],
        backgrounds: dict[str, Sequence[torch.Tensor]],
    ) -> TaughtClasses:
        """These classes plus ``name``: one object proxy per level, and one proxy per level for
        each of its background cells (``{"<grid>x<grid>:<i>": proxies}``)."""
        if not backgrounds:
            raise InputError(f"taught class {name!r} needs at least one background proxy")
        cells = tuple(backgrounds)
        background = ProxySet(
            cells, tuple(cell_id(c) for c in cells),
            tuple(torch.stack([backgrounds[c][level] for c in cells]) for level in range(len(objects))),
        )
        return TaughtClasses(self.objects.imprint(name, objects, class_id), (*self.backgrounds, background))

    def adapt(
        self, name: str, objects: Sequence[torch.Tensor] | None,
        backgrounds: dict[str, Sequence[torch.Tensor]], alpha: float,
    ) -> TaughtClasses:
        """Class ``name``'s object (if given) and the named background cells moved towards new
        proxies (AMP eq. 2); cells it has no proxy for yet are imprinted."""
        row = self.objects.index(name)
        adapted_objects = self.objects.adapt(name, objects, alpha) if objects is not None else self.objects
        background = self.backgrounds[row]
        for cell, proxies in backgrounds.items():
            if cell in background:
                background = background.adapt(cell, proxies, alpha)
            else:
                background = background.imprint(cell, proxies, cell_id(cell))
        updated = (*self.backgrounds[:row], background, *self.backgrounds[row + 1:])
        return TaughtClasses(adapted_objects, updated)

    def remove(self, name: str) -> TaughtClasses:
        """These classes without ``name``."""
        row = self.objects.index(name)
        return TaughtClasses(self.objects.remove(name), self.backgrounds[:row] + self.backgrounds[row + 1:])


_CELL = re.compile(r"(\d+)x\1:(\d+)")


def _cell_match(cell: str) -> re.Match[str]:
    match = _CELL.fullmatch(cell)
    if match is None:
        raise InputError(f"a background cell is named <grid>x<grid>:<index>, got {cell!r}")
    return match


def cell_id(cell: str) -> int:
    """The grid index i of a cell name ``<grid>x<grid>:<i>``."""
    return int(_cell_match(cell).group(2))


def _cell_grid(cell: str) -> int:
    """The grid of a cell name ``<grid>x<grid>:<i>``."""
    return int(_cell_match(cell).group(1))
