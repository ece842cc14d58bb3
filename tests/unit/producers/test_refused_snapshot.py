"""A snapshot the venue refuses as final is asked again after a growing pause: no book stays stuck."""

from __future__ import annotations

from producers.health import FeedEventKind
from schemas.topics import Topic
from tests.unit.producers.test_pipeline import MS, SNAP_URL, _depth, _Run, gap_after_sync

S = 1_000 * MS


def test_a_refused_resync_snapshot_is_asked_again_after_a_growing_pause_then_the_book_recovers() -> None:
    run = _Run()
    p = run.pipeline
    gap_after_sync(p)  # resync: the snapshot is asked again
    assert run.snapshot_requests == ["BTCUSDT", "BTCUSDT"]
    # Act: the venue refuses it as final; diffs keep coming meanwhile
    p.snapshot_failed("BTCUSDT", "HTTP 403", False, 104 * MS)
    p.frame("c0#1", _depth(19, 20, "99.60"), 105 * MS)
    p.tick(104 * MS + 14 * S)
    asked_before_the_pause = len(run.snapshot_requests)
    p.tick(104 * MS + 31 * S)
    asked_after_the_pause = len(run.snapshot_requests)
    p.snapshot_failed("BTCUSDT", "HTTP 403", False, 40 * S)
    p.tick(40 * S + 29 * S)
    asked_before_the_second_pause = len(run.snapshot_requests)
    p.tick(40 * S + 61 * S)
    asked_after_the_second_pause = len(run.snapshot_requests)
    stuck_for = p.unsynced_s(101 * S)["BTCUSDT"]
    p.snapshot(SNAP_URL, b'{"lastUpdateId": 18, "bids": [["99.00","1"]], "asks": []}', 101 * S)
    # Assert
    assert (asked_before_the_pause, asked_after_the_pause) == (2, 3)
    assert (asked_before_the_second_pause, asked_after_the_second_pause) == (3, 4)
    refusals = [e for e in run.of(Topic.HEALTH) if e["kind"] == FeedEventKind.OTHER.value]
    assert [e["count"] for e in refusals] == [1, 2] and all("not retriable" in e["detail"] for e in refusals)
    assert stuck_for >= 100
    assert run.of(Topic.HEALTH)[-1]["kind"] == "recovered"
    assert p.unsynced_s(102 * S) == {} and p.status()["BTCUSDT"]["snapshot_refusals"] == 0


def test_a_refusal_before_the_first_sync_does_not_turn_every_diff_into_a_new_request() -> None:
    run = _Run()
    p = run.pipeline
    p.open("c0#1", "ws://x", 0)
    p.frame("c0#1", _depth(10, 12, "99.00"), MS)
    p.snapshot_failed("BTCUSDT", "HTTP 403", False, 2 * MS)

    for i in range(20):
        p.frame("c0#1", _depth(13 + i, 13 + i, "99.00"), (3 + i) * MS)
    p.tick(1 * S)
    asked_during_the_pause = len(run.snapshot_requests)
    p.tick(31 * S)

    assert asked_during_the_pause == 1
    assert len(run.snapshot_requests) == 2
