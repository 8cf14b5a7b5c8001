"""How many CPU threads torch uses during training.

``amp-train --threads N`` and ``imprint_check --threads N`` set it once for the process; 0
keeps torch's default (one per core). The runs recorded in this repository used ``--threads 2``
(on a 2-core machine; it used to be hard-wired).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

DEFAULT_THREADS = 0  # torch's default
SAMPLING_THREADS = 1  # the many small per-sample tensor ops are far slower on several threads


def set_threads(count: int) -> None:
    """Run torch's CPU ops on ``count`` threads; 0 leaves torch's default."""
    if count < 0:
        raise ValueError(f"thread count must be ≥ 0, got {count}")
    if count:
        torch.set_num_threads(count)


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Temporarily run torch's CPU ops on ``count`` threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
