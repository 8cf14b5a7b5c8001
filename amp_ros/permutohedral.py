"""Gaussian filtering in a high-dimensional feature space on the permutohedral lattice, in torch.

The filter of the dense CRF's messages (Adams, Baek & Davis, "Fast high-dimensional filtering
using the permutohedral lattice", Eurographics 2010; the form Krähenbühl & Koltun's dense CRF
uses). Each point is splatted onto the d+1 vertices of the lattice simplex around it with its
barycentric weights, the lattice is blurred with [1/2, 1, 1/2] along each of its d+1 axes, and
the result is read back (sliced) with the same weights. The lattice is built once per frame;
every mean-field iteration then is one splat, blur and slice: gathers and scatters of tensors
that run on the CPU or a GPU alike.
"""

from __future__ import annotations

import math

import torch

from amp_ros.errors import InputError


class PermutohedralLattice:
    """The lattice of N points with d-dimensional features (already divided by the kernel's
    standard deviations), ready to filter any number of N-long signals with the Gaussian
    kernel exp(-|f_i - f_j|² / 2)."""

    def __init__(self, features: torch.Tensor):
        if features.dim() != 2 or features.shape[0] < 1 or features.shape[1] < 1:
            raise InputError(f"lattice features must be N×d with N, d >= 1, got {tuple(features.shape)}")
        if not torch.isfinite(features).all():
            raise InputError("lattice features contain NaN or inf values")
        points, d = features.shape
        device = features.device
        features = features.float()  # single precision, as pydensecrf

        # Elevate onto the hyperplane sum(x) = 0 of R^(d+1), scaled so the blur has std 1.
        level = torch.arange(d, dtype=torch.float32, device=device)
        scaled = features * (math.sqrt(2.0 / 3.0) * (d + 1) / torch.sqrt((level + 1) * (level + 2)))
        suffix = scaled.flip(1).cumsum(1).flip(1)  # suffix[:, j] = sum of scaled[:, j:]
        elevated = torch.empty(points, d + 1, dtype=torch.float32, device=device)
        elevated[:, 0] = suffix[:, 0]
        elevated[:, 1:d] = suffix[:, 1:] - level[1:] * scaled[:, : d - 1]
        elevated[:, d] = -d * scaled[:, d - 1]

        # The nearest remainder-0 lattice point, and the simplex the point lies in (its rank order).
        nearest = torch.round(elevated / (d + 1))
        origin = nearest * (d + 1)
        offset = elevated - origin
        # rank[i]: how many coordinates have a larger offset (ties: the later one ranks higher).
        order = torch.argsort(-offset, dim=1, stable=True)
        rank = torch.empty_like(order)
        rank.scatter_(1, order, torch.arange(d + 1, device=device).expand(points, d + 1).contiguous())
        rank = rank + nearest.sum(1, keepdim=True).long()
        wrap = (rank < 0).long() - (rank > d).long()  # off the plane: move to the next simplex
        rank = rank + wrap * (d + 1)
        origin = origin + wrap * (d + 1)

        # Barycentric weights of the d+1 vertices.
        share = (elevated - origin) / (d + 1)
        barycentric = torch.zeros(points, d + 2, dtype=torch.float32, device=device)
        barycentric.scatter_add_(1, d - rank, share)
        barycentric.scatter_add_(1, d - rank + 1, -share)
        barycentric[:, 0] += 1.0 + barycentric[:, d + 1]

        # Vertex r of a point's simplex is its origin plus the canonical simplex's vertex r, whose
        # coordinate i is r, less d+1 where rank_i > d - r. Only d coordinates are kept (they sum
        # to zero), as int64 keys: shifted to be non-negative with room for the blur's neighbours.
        kept = origin[:, :d].long()
        lowest = kept.amin(0) - 2 * (d + 1)
        extent = kept.amax(0) - lowest + 2 * (d + 1) + 1
        strides = torch.ones(d, dtype=torch.long, device=device)
        for i in range(1, d):
            strides[i] = strides[i - 1] * extent[i - 1]
        if float(strides[-1]) * float(extent[-1]) >= 2**62:
            raise InputError("lattice features span too wide a range for int64 keys; scale them down")
        base = ((kept - lowest) * strides).sum(1)
        # sum of stride_i over the coordinates with d - rank_i < r, for every r: a cumulative sum
        lowered = torch.zeros(points, d + 2, dtype=torch.long, device=device)
        lowered.scatter_add_(1, d - rank[:, :d] + 1, strides.expand(points, d).contiguous())
        remainder = torch.arange(d + 1, device=device)
        keys = base[:, None] + remainder * strides.sum() - (d + 1) * lowered.cumsum(1)[:, : d + 1]
        self._keys, index = torch.unique(keys.reshape(-1), return_inverse=True)
        self.size = len(self._keys)  # lattice vertices; row `size` of a lattice signal stays zero
        self._index = index  # point p's vertex r is row p·(d+1) + r
        self._weights = barycentric[:, : d + 1].contiguous()

        # Neighbours along lattice axis j: every kept coordinate -1 except coordinate j, which
        # moves +d (and the reverse); along axis d every kept coordinate moves by ±1.
        self._neighbours = []
        total = strides.sum()
        rows = torch.arange(self.size, device=device)
        for axis in range(d + 1):
            step = total - (d + 1) * strides[axis] if axis < d else total
            up = self._find(self._keys + step)
            down = torch.full((self.size + 1,), self.size, dtype=torch.long, device=device)
            found = up < self.size
            down[up[found]] = rows[found]  # u is the up-neighbour of v exactly when v is u's down one
            # one more entry each for the zero row, so a blur step keeps it zero
            self._neighbours.append((down, torch.cat([up, up.new_full((1,), self.size)])))
        self._alpha = 1.0 / (1.0 + 2.0 ** -d)  # Adams et al.'s normalising constant

    def _find(self, keys: torch.Tensor) -> torch.Tensor:
        """Lattice rows of ``keys``; ``size`` (the zero row) where a key is no vertex."""
        rows = torch.searchsorted(self._keys, keys).clamp_max(self.size - 1)
        return torch.where(self._keys[rows] == keys, rows, torch.full_like(rows, self.size))

    def filter(self, values: torch.Tensor) -> torch.Tensor:
        """K×N signals filtered with the Gaussian kernel (each point's own value included)."""
        return torch.stack([self._filter(channel) for channel in values])

    def _filter(self, values: torch.Tensor) -> torch.Tensor:
        splat = (self._weights * values[:, None]).reshape(-1)
        lattice = torch.bincount(self._index, weights=splat, minlength=self.size + 1).to(values.dtype)
        for down, up in self._neighbours:
            lattice = lattice + 0.5 * (lattice.index_select(0, down) + lattice.index_select(0, up))
        sliced = lattice.index_select(0, self._index).view_as(self._weights) * self._weights
        return self._alpha * sliced.sum(1)
