"""LatestFrameWorker: the newest item wins, replaced items are counted, stop wakes the worker."""

from __future__ import annotations

import threading

from amp_ros.latest_frame import LatestFrameWorker

TIMEOUT = 10.0


class Recorder:
    """A handler that records its items and blocks on ``gate`` while handling."""

    def __init__(self) -> None:
        self.items: list[int] = []
        self.gate = threading.Event()
        self.started = threading.Semaphore(0)
        self.done = threading.Semaphore(0)

    def __call__(self, item: int) -> None:
        self.items.append(item)
        self.started.release()
        assert self.gate.wait(TIMEOUT)
        self.done.release()


def test_newest_item_wins_and_replaced_items_are_counted() -> None:
    recorder = Recorder()
    worker = LatestFrameWorker(recorder).start()
    try:
        worker.offer(1)
        assert recorder.started.acquire(timeout=TIMEOUT)  # the worker is busy with 1
        for item in (2, 3, 4):
            worker.offer(item)
        assert worker.dropped == 2  # 2 and 3 replaced before the worker took them
        recorder.gate.set()
        assert recorder.done.acquire(timeout=TIMEOUT)
        assert recorder.done.acquire(timeout=TIMEOUT)
        assert recorder.items == [1, 4]
        assert worker.dropped == 2
    finally:
        recorder.gate.set()
        worker.stop()


def test_an_item_offered_while_idle_is_handled_and_not_dropped() -> None:
    recorder = Recorder()
    recorder.gate.set()
    worker = LatestFrameWorker(recorder).start()
    try:
        for item in (5, 6):
            worker.offer(item)
            assert recorder.done.acquire(timeout=TIMEOUT)
        assert recorder.items == [5, 6] and worker.dropped == 0
    finally:
        worker.stop()


def test_stop_wakes_the_waiting_worker() -> None:
    worker = LatestFrameWorker(Recorder()).start()
    worker.stop(timeout=TIMEOUT)  # it waits for an item without a polling timeout: stop must wake it
    assert not worker.alive


def test_an_item_waiting_at_stop_is_discarded() -> None:
    handled: list[int] = []
    started, gate = threading.Event(), threading.Event()

    def handle(item: int) -> None:  # stops the worker while 2 waits in the slot
        handled.append(item)
        started.set()
        assert gate.wait(TIMEOUT)
        worker.stop()  # from the worker thread: no join

    worker = LatestFrameWorker(handle)
    worker.start().offer(1)
    assert started.wait(TIMEOUT)
    worker.offer(2)
    gate.set()
    worker.stop(timeout=TIMEOUT)  # joins the worker
    assert not worker.alive
    assert handled == [1]
