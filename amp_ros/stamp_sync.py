"""Approximate-time pairing of frames and flow fields by header stamp (message_filters is not
on PyPI; this is the 30-line part of it the node needs)."""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

A = TypeVar("A")
B = TypeVar("B")


class StampPairer(Generic[A, B]):
    """Pairs items of two streams whose stamps (ns) differ by at most ``slop_ns``.

    Keeps at most ``depth`` unmatched items per stream; when a pair is found, every older
    unmatched item of either stream is dropped (and counted), so only fresh pairs come out;
    items pushed out by ``depth`` are counted too.
    """

    def __init__(self, slop_ns: int, depth: int = 10):
        self.slop_ns = slop_ns
        self._first: deque[tuple[int, A]] = deque(maxlen=depth)
        self._second: deque[tuple[int, B]] = deque(maxlen=depth)
        self.dropped = 0

    def add_first(self, stamp_ns: int, item: A) -> tuple[int, A, B] | None:
        """Offer an item of the first stream; returns (stamp, first, second) when it pairs."""
        match = self._take(self._second, stamp_ns)
        if match is None:
            self._append(self._first, stamp_ns, item)
            return None
        self._drop_older(self._first, stamp_ns)
        return stamp_ns, item, match

    def add_second(self, stamp_ns: int, item: B) -> tuple[int, A, B] | None:
        """Offer an item of the second stream; returns (first's stamp, first, second) on a pair."""
        found = self._closest(self._first, stamp_ns)
        if found is None:
            self._append(self._second, stamp_ns, item)
            return None
        first_stamp, first = self._first[found]
        del self._first[found]
        self._drop_older(self._first, first_stamp)
        self._drop_older(self._second, stamp_ns)
        return first_stamp, first, item

    def take_first_before(self, stamp_ns: int) -> tuple[int, A] | None:
        """Remove every waiting first-stream item stamped before ``stamp_ns`` and return the
        newest of them as (stamp, item), None if there is none; the older ones are dropped
        (counted). For items that can no longer pair (the second stream has moved past them)."""
        newest = None
        while self._first and self._first[0][0] < stamp_ns:
            if newest is not None:
                self.dropped += 1
            newest = self._first.popleft()
        return newest

    def _append(self, queue: deque, stamp_ns: int, item: object) -> None:
        if len(queue) == queue.maxlen:  # the oldest waiting item falls out
            self.dropped += 1
        queue.append((stamp_ns, item))

    def _closest(self, queue: deque, stamp_ns: int) -> int | None:
        best, best_gap = None, self.slop_ns
        for index, (stamp, _) in enumerate(queue):
            gap = abs(stamp - stamp_ns)
            if gap <= best_gap:
                best, best_gap = index, gap
        return best

    def _take(self, queue: deque, stamp_ns: int):
        found = self._closest(queue, stamp_ns)
        if found is None:
            return None
        stamp, item = queue[found]
        del queue[found]
        self._drop_older(queue, stamp)
        return item

    def _drop_older(self, queue: deque, stamp_ns: int) -> None:
        while queue and queue[0][0] < stamp_ns:
            queue.popleft()
            self.dropped += 1
