"""BookSync: Binance's documented procedure, and a property: never a wrong book."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from producers import book_sync as bs
from producers.binance.sync_rule import BinanceSpotSyncRule
from producers.venue import Diff, Snapshot
from tests.unit.producers.exchange_model import Truth, book_as_dicts, truths

RULE = BinanceSpotSyncRule()


def _diff(first: int, last: int, bids: list[list[str]] | None = None) -> Diff:
    return Diff("X", first, last, bids or [], [], 0, 0)


def _snap(sid: int) -> Snapshot:
    return Snapshot("X", sid, [["1", "1"]], [["2", "1"]], 0)


def test_diffs_buffer_until_snapshot_then_stale_ones_drop_and_straddling_one_applies() -> None:
    sync = bs.BookSync(RULE)
    # Arrange: diffs 100-102, 103-105, 106-106 arrive before the snapshot (id 104)
    for first, last in ((100, 102), (103, 105), (106, 106)):
        assert isinstance(sync.apply_diff(_diff(first, last)), bs.Buffered)
    # Act
    result = sync.apply_snapshot(_snap(104))
    # Assert: 100-102 dropped (u <= 104), 103-105 straddles 105, 106 follows
    assert isinstance(result, bs.Synced)
    assert [(d.first_id, d.last_id) for d in result.applied] == [(103, 105), (106, 106)]
    assert sync.state is bs.SyncState.LIVE and sync.book.last_update_id == 106


def test_snapshot_older_than_buffer_is_stale_and_a_newer_one_syncs() -> None:
    sync = bs.BookSync(RULE)
    sync.apply_diff(_diff(200, 210))
    assert isinstance(sync.apply_snapshot(_snap(150)), bs.Stale)
    assert isinstance(sync.apply_snapshot(_snap(205)), bs.Synced)


def test_first_diff_after_snapshot_must_straddle() -> None:
    sync = bs.BookSync(RULE)
    sync.apply_diff(_diff(1, 2))
    assert isinstance(sync.apply_snapshot(_snap(10)), bs.Synced)  # buffer empty after dropping
    assert isinstance(sync.apply_diff(_diff(9, 10)), bs.Duplicate)
    result = sync.apply_diff(_diff(12, 13))
    assert result == bs.Gap(11, 12)
    assert sync.state is bs.SyncState.SYNCING


def test_gap_keeps_the_diff_after_it_for_the_next_sync() -> None:
    sync = bs.BookSync(RULE)
    sync.apply_diff(_diff(10, 11))
    sync.apply_snapshot(_snap(10))
    assert isinstance(sync.apply_diff(_diff(14, 15)), bs.Gap)
    assert sync.buffered == 1
    result = sync.apply_snapshot(_snap(14))
    assert isinstance(result, bs.Synced) and sync.book.last_update_id == 15


def test_crossed_book_resyncs() -> None:
    sync = bs.BookSync(RULE)
    sync.apply_diff(_diff(5, 5))
    sync.apply_snapshot(_snap(4))
    assert sync.apply_diff(_diff(6, 6, [["3", "1"]])) == bs.Crossed(6)
    assert sync.state is bs.SyncState.SYNCING


def _check_true(sync: bs.BookSync, truth: Truth) -> None:
    if sync.state is bs.SyncState.LIVE:
        assert book_as_dicts(sync.book.top()) == truth.books[sync.book.last_update_id]


@settings(max_examples=150, deadline=None)
@given(truths(), st.data())
def test_any_delivery_pattern_gives_the_true_book_or_a_resync_never_a_wrong_book(truth: Truth, data: st.DataObject) -> None:
    # Arrange: deliver each event 0-2 times, in a shuffled-but-mostly-forward order, snapshots at random points
    n = len(truth.diffs)
    copies = [i for i in range(n) for _ in range(data.draw(st.integers(0, 2)))]
    order = data.draw(st.permutations(copies)) if data.draw(st.booleans()) else sorted(copies)
    sync = bs.BookSync(RULE)
    delivered_up_to = -1
    snapshots_left = 3
    for i in order:
        # Act
        result = sync.apply_diff(truth.diffs[i])
        delivered_up_to = max(delivered_up_to, i)
        if sync.state is bs.SyncState.SYNCING and snapshots_left and data.draw(st.booleans()):
            snapshots_left -= 1
            at = data.draw(st.integers(-1, delivered_up_to))
            result = sync.apply_snapshot(truth.snapshot_after(at))
        # Assert
        assert not isinstance(result, bs.Crossed)  # the true book never crosses
        _check_true(sync, truth)


@settings(max_examples=80, deadline=None)
@given(truths(), st.data())
def test_in_order_delivery_with_one_snapshot_reaches_the_final_true_book(truth: Truth, data: st.DataObject) -> None:
    at = data.draw(st.integers(-1, len(truth.diffs) - 1))
    sync = bs.BookSync(RULE)
    for i, diff in enumerate(truth.diffs):
        sync.apply_diff(diff)
        if i == max(at, 0):
            assert isinstance(sync.apply_snapshot(truth.snapshot_after(at)), bs.Synced)
    assert sync.state is bs.SyncState.LIVE
    assert book_as_dicts(sync.book.top()) == truth.books[truth.diffs[-1].last_id]
