"""A one-item slot for the newest input and the worker thread that handles it (no ROS imports).

Producers :meth:`~LatestFrameWorker.offer` items; an item not yet taken by the worker is replaced
by a newer one and counted as dropped, so a slow handler skips stale inputs instead of building a
queue.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestFrameWorker(Generic[T]):
    """Hands the newest offered item to ``handle`` on its own thread, one at a time.

    ``handle`` should not raise (an exception ends the worker thread).
    """

    def __init__(self, handle: Callable[[T], None], name: str = "latest_frame_worker"):
        self._handle = handle
        self._slot: T | None = None
        self._full = False  # the slot holds an item (which may itself be None)
        self._ready = threading.Condition()
        self._running = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.dropped = 0  # items replaced before the worker took them

    def start(self) -> LatestFrameWorker[T]:
        """Start the worker thread."""
        self._running = True
        self._thread.start()
        return self

    def offer(self, item: T) -> None:
        """Make ``item`` the next one to handle, replacing (and counting) one still waiting."""
        with self._ready:
            if self._full:
                self.dropped += 1
            self._slot, self._full = item, True
            self._ready.notify()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the worker: wake it if it waits, let a running ``handle`` finish (up to
        ``timeout`` s; not waited for when called from ``handle``); an item still waiting is
        discarded."""
        with self._ready:
            self._running = False
            self._ready.notify_all()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        """Whether the worker thread is running."""
        return self._thread.is_alive()

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._full and self._running:
                    self._ready.wait()
                if not self._running:
                    return
                item, self._slot, self._full = self._slot, None, False
            self._handle(item)
