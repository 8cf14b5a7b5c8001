"""Tests of StampPairer: approximate-time pairing of frames and flow fields by header stamp."""

from __future__ import annotations

from amp_ros.stamp_sync import StampPairer

MS = 1_000_000  # ns


def test_equal_stamps_pair_in_either_order() -> None:
    """Frame first or flow first: equal stamps give (stamp, frame, flow) once."""
    pairer: StampPairer[str, str] = StampPairer(slop_ns=0)
    assert pairer.add_first(100 * MS, "frame 100") is None
    assert pairer.add_second(100 * MS, "flow 100") == (100 * MS, "frame 100", "flow 100")
    assert pairer.add_second(133 * MS, "flow 133") is None
    assert pairer.add_first(133 * MS, "frame 133") == (133 * MS, "frame 133", "flow 133")
    assert pairer.dropped == 0


def test_pairs_within_slop_only() -> None:
    """A stamp difference up to slop (inclusive) pairs; one nanosecond more does not."""
    pairer: StampPairer[str, str] = StampPairer(slop_ns=5 * MS)
    assert pairer.add_first(100 * MS, "frame") is None
    assert pairer.add_second(105 * MS + 1, "too late") is None
    assert pairer.add_second(95 * MS, "early, within slop") == (100 * MS, "frame", "early, within slop")
    assert pairer.add_first(200 * MS, "frame 200") is None
    assert pairer.add_second(205 * MS, "flow 205") == (200 * MS, "frame 200", "flow 205")


def test_the_result_carries_the_frame_stamp() -> None:
    """The pair's stamp is the first stream's (the frame's), whichever item came last."""
    pairer: StampPairer[str, str] = StampPairer(slop_ns=5 * MS)
    pairer.add_second(102 * MS, "flow")
    assert pairer.add_first(100 * MS, "frame") == (100 * MS, "frame", "flow")
    pairer.add_first(200 * MS, "frame")
    assert pairer.add_second(203 * MS, "flow") == (200 * MS, "frame", "flow")


def test_closest_candidate_wins() -> None:
    """Several candidates within slop: the closest stamp is paired."""
    pairer: StampPairer[str, str] = StampPairer(slop_ns=10 * MS)
    pairer.add_second(92 * MS, "flow 92")
    pairer.add_second(99 * MS, "flow 99")
    pairer.add_second(109 * MS, "flow 109")
    assert pairer.add_first(100 * MS, "frame") == (100 * MS, "frame", "flow 99")


def test_out_of_order_arrivals_pair() -> None:
    """Flows that arrive before their frames, and frames in shuffled order, still pair."""
    pairer: StampPairer[str, str] = StampPairer(slop_ns=1 * MS)
    assert pairer.add_second(200 * MS, "flow 200") is None
    assert pairer.add_second(100 * MS, "flow 100") is None
    assert pairer.add_first(100 * MS, "frame 100") == (100 * MS, "frame 100", "flow 100")
    assert pairer.add_first(200 * MS, "frame 200") == (200 * MS, "frame 200", "flow 200")

    assert pairer.add_first(400 * MS, "frame 400") is None
    assert pairer.add_first(300 * MS, "frame 300") is None
    assert pairer.add_second(300 * MS, "flow 300") == (300 * MS, "frame 300", "flow 300")
    assert pairer.add_second(400 * MS, "flow 400") == (400 * MS, "frame 400", "flow 400")
    assert pairer.dropped == 0


def test_older_unmatched_frames_are_dropped_and_counted() -> None:
    """A pair drops every older unmatched frame (their flow never came)."""
    pairer: StampPairer[str, str] = StampPairer(slop_ns=0)
    for stamp in (100, 133, 166):
        assert pairer.add_first(stamp * MS, f"frame {stamp}") is None
    assert pairer.add_second(200 * MS, "flow 200") is None
    assert pairer.add_first(200 * MS, "frame 200") == (200 * MS, "frame 200", "flow 200")
    assert pairer.dropped == 3
    assert pairer.add_second(133 * MS, "flow 133, too late") is None  # its frame is gone


def test_older_unmatched_flows_are_dropped_and_counted() -> None:
    """A pair drops every older unmatched flow field (its frame was lost)."""
    pairer: StampPairer[str, str] = StampPairer(slop_ns=0)
    pairer.add_second(100 * MS, "flow 100")
    pairer.add_second(133 * MS, "flow 133")
    pairer.add_first(166 * MS, "frame 166")
    assert pairer.add_second(166 * MS, "flow 166") == (166 * MS, "frame 166", "flow 166")
    assert pairer.dropped == 2
    assert pairer.add_first(133 * MS, "frame 133, too late") is None


def test_newer_unmatched_items_are_kept() -> None:
    """Items newer than a pair wait for their partner."""
    pairer: StampPairer[str, str] = StampPairer(slop_ns=0)
    pairer.add_first(100 * MS, "frame 100")
    pairer.add_first(133 * MS, "frame 133")
    assert pairer.add_second(100 * MS, "flow 100") == (100 * MS, "frame 100", "flow 100")
    assert pairer.add_second(133 * MS, "flow 133") == (133 * MS, "frame 133", "flow 133")
    assert pairer.dropped == 0


def test_stamps_jumping_back_still_pair() -> None:
    """A bag played in a loop or a restarted simulator sends older stamps again: they pair."""
    pairer: StampPairer[str, str] = StampPairer(slop_ns=0)
    pairer.add_first(900 * MS, "frame 900")
    assert pairer.add_second(900 * MS, "flow 900") is not None
    pairer.add_first(100 * MS, "frame 100 again")
    assert pairer.add_second(100 * MS, "flow 100 again") == (100 * MS, "frame 100 again", "flow 100 again")


def test_depth_bounds_the_backlog_and_counts_evictions() -> None:
    """Without partners at most ``depth`` items wait per stream; the evicted ones are counted."""
    pairer: StampPairer[int, int] = StampPairer(slop_ns=0, depth=3)
    for stamp in range(10):
        pairer.add_first(stamp * MS, stamp)
    assert pairer.dropped == 7
    assert pairer.add_second(9 * MS, 9) == (9 * MS, 9, 9)
    assert pairer.dropped == 9  # frames 7 and 8 were older than the pair


def test_slop_can_change_at_run_time() -> None:
    """The node updates ``slop_ns`` when its ``slop`` parameter changes."""
    pairer: StampPairer[str, str] = StampPairer(slop_ns=0)
    pairer.add_first(100 * MS, "frame")
    assert pairer.add_second(104 * MS, "flow") is None
    pairer.slop_ns = 5 * MS
    pairer.add_first(200 * MS, "frame 200")
    assert pairer.add_second(204 * MS, "flow 204") == (200 * MS, "frame 200", "flow 204")


def test_first_items_the_second_stream_has_passed_are_taken() -> None:
    """take_first_before returns the newest waiting first item before a stamp, drops older ones."""
    pairer: StampPairer[str, str] = StampPairer(slop_ns=1 * MS)
    for stamp in (10, 20, 30):
        assert pairer.add_first(stamp * MS, f"frame{stamp}") is None
    assert pairer.take_first_before(5 * MS) is None
    assert pairer.take_first_before(25 * MS) == (20 * MS, "frame20")
    assert pairer.dropped == 1  # frame10
    assert pairer.take_first_before(25 * MS) is None
    assert pairer.add_second(30 * MS, "flow30") == (30 * MS, "frame30", "flow30")
