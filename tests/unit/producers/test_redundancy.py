"""Merging redundant connections: each event once, in venue order; stalled connections found."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from producers.redundancy import MonotonicFilter, SequenceMerger, StallDetector

HOLD = 100


def _merger() -> SequenceMerger[int]:
    return SequenceMerger(lambda t: (t, t), lambda prev, t: t == prev + 1, HOLD)


def test_duplicates_from_a_peer_are_dropped_and_counted() -> None:
    m = _merger()
    assert m.offer(1, 0) == [1] and m.offer(2, 0) == [2]
    assert m.offer(1, 1) == [] and m.offer(2, 1) == []
    assert m.duplicates == 2


def test_event_ahead_waits_for_the_peer_to_fill_the_hole() -> None:
    m = _merger()
    m.offer(1, 0)
    assert m.offer(3, 10) == [] and m.offer(4, 11) == []
    assert m.offer(2, 20) == [2, 3, 4]
    assert m.held == 0


def test_hole_nobody_fills_is_released_after_the_hold() -> None:
    m = _merger()
    m.offer(1, 0)
    m.offer(4, 10)
    assert m.expire(10 + HOLD - 1) == []
    assert m.expire(10 + HOLD) == [4]
    assert m.offer(5, 200) == [5]


@st.composite
def _connections(draw: st.DrawFn) -> tuple[int, list[list[int]]]:
    n = draw(st.integers(1, 60))
    streams = []
    for _ in range(draw(st.integers(2, 3))):
        # a connection sees the sequence in order but loses whole stretches (drops, reconnects)
        keep = draw(st.lists(st.booleans(), min_size=n, max_size=n))
        streams.append([i for i in range(1, n + 1) if keep[i - 1]])
    # every event reaches at least one connection
    missing = set(range(1, n + 1)) - {i for s in streams for i in s}
    streams[0] = sorted(set(streams[0]) | missing)
    return n, streams


@settings(max_examples=120, deadline=None)
@given(_connections(), st.data())
def test_interleaved_lossy_connections_merge_to_every_event_once_in_order(
    case: tuple[int, list[list[int]]], data: st.DataObject
) -> None:
    # Arrange
    n, streams = case
    m: SequenceMerger[int] = SequenceMerger(lambda t: (t, t), lambda prev, t: t == prev + 1, 10_000)
    out: list[int] = []
    first: int | None = None
    cursors = [0] * len(streams)
    now = 0
    # Act: interleave the connections in random order; time advances slower than the hold
    while any(c < len(s) for c, s in zip(cursors, streams, strict=True)):
        live = [k for k, s in enumerate(streams) if cursors[k] < len(s)]
        k = data.draw(st.sampled_from(live))
        first = streams[k][cursors[k]] if first is None else first
        out += m.offer(streams[k][cursors[k]], now)
        cursors[k] += 1
        now += 1
    out += m.expire(now + 10_000)
    # Assert: each event from the first one offered onwards, once, in order
    assert out == list(range(first, n + 1))


def test_monotonic_filter_passes_only_new_ids() -> None:
    f = MonotonicFilter()
    assert [f.accept(i) for i in (5, 5, 3, 7)] == [True, False, False, True]
    assert f.duplicates == 2


def test_stall_detector_flags_only_silent_connection_while_peer_receives() -> None:
    d = StallDetector(timeout_ns=100)
    d.opened("a", 0)
    d.opened("b", 0)
    for t in range(10, 160, 10):
        d.frame("a", t)
    assert d.stalled(150) == ["b"]
    assert d.stalled(300) == []  # both silent: a quiet market


def test_a_quiet_market_waking_up_on_one_connection_first_stalls_nobody() -> None:
    # Arrange: both receive, then the market is quiet for longer than the timeout
    d = StallDetector(timeout_ns=100)
    d.opened("a", 0)
    d.opened("b", 0)
    d.frame("a", 10)
    d.frame("b", 10)

    # Act: the next frame lands on a a moment before b
    d.frame("a", 500)

    # Assert
    assert d.stalled(501) == []
    d.frame("b", 502)
    assert d.stalled(650) == []
    # b really stalls now: flagged once a has been receiving for the timeout without it
    for t in range(510, 610, 10):
        d.frame("a", t)
    assert d.stalled(601) == []
    assert d.stalled(602) == ["b"]


def test_all_connections_silent_past_the_silence_timeout_are_all_replaced() -> None:
    d = StallDetector(timeout_ns=100, silence_ns=1000)
    d.opened("a", 0)
    d.opened("b", 0)
    assert d.stalled(999) == []
    assert sorted(d.stalled(1000)) == ["a", "b"]
