"""The update-id rule of BookDelta records and the book kept under it, against hand-written models."""

from __future__ import annotations

import json
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from orderbook import Applied, Gap, NotSynced, OutOfOrder, SequencedBook, decide


def delta(first: int, last: int, bids=(), asks=(), snapshot: bool = False) -> dict:
    return {
        "snapshot": snapshot, "first_update_id": first, "last_update_id": last,
        "bids": [{"price": p, "qty": q} for p, q in bids], "asks": [{"price": p, "qty": q} for p, q in asks],
    }


def qty(book: SequencedBook) -> tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]:
    bids, asks = book.decimal_top(len(book.bids.prices) + len(book.asks.prices))
    return dict(bids), dict(asks)


def test_snapshot_then_contiguous_delta_applies_and_zero_qty_removes_level():
    # Arrange
    book = SequencedBook()
    # Act
    r1 = book.apply_record(delta(10, 10, [("100.0", "1"), ("99.5", "2")], [("100.5", "3")], snapshot=True))
    r2 = book.apply_record(delta(11, 12, [("100.0", "0")], [("100.25", "4")]))
    # Assert
    assert isinstance(r1, Applied) and isinstance(r2, Applied)
    assert book.bids.prices == [Decimal("99.5")]
    assert book.asks.prices == [Decimal("100.25"), Decimal("100.5")]
    assert book.last_update_id == 12


def test_delta_before_snapshot_is_not_applied():
    book = SequencedBook()
    assert isinstance(book.apply_record(delta(1, 1, [("1", "1")])), NotSynced)
    assert book.bids.prices == []


def test_old_update_is_out_of_order_and_leaves_book_unchanged():
    book = SequencedBook()
    book.apply_record(delta(10, 10, [("100", "1")], [("101", "1")], snapshot=True))
    result = book.apply_record(delta(9, 10, [("100", "5")]))
    assert isinstance(result, OutOfOrder)
    assert qty(book)[0][Decimal(100)] == Decimal(1)


def test_gap_unsyncs_until_next_snapshot():
    book = SequencedBook()
    book.apply_record(delta(10, 10, [("100", "1")], [("101", "1")], snapshot=True))
    assert isinstance(book.apply_record(delta(12, 12, [("100", "2")])), Gap)
    assert not book.synced
    assert isinstance(book.apply_record(delta(13, 13, [("100", "2")])), NotSynced)
    assert isinstance(book.apply_record(delta(20, 20, [("100", "3")], [("101", "1")], snapshot=True)), Applied)
    assert book.synced and qty(book)[0][Decimal(100)] == Decimal(3)


def test_overlapping_first_delta_after_snapshot_applies():
    # Binance-style: the first delta after a snapshot may start before snapshot id + 1
    book = SequencedBook()
    book.apply_record(delta(100, 100, [("1", "1")], [("2", "1")], snapshot=True))
    assert isinstance(book.apply_record(delta(95, 105, [("1", "3")])), Applied)


def test_an_older_snapshot_is_refused_only_when_asked_and_a_gapped_book_stays_gapped():
    # Arrange: the executor's book (older snapshots refused) and the streams' (every snapshot taken)
    executor, streams = SequencedBook(refuse_older_snapshots=True), SequencedBook()
    for book in (executor, streams):
        book.apply_record(delta(50, 50, [("100", "7")], [("101", "7")], snapshot=True))
        book.apply_record(delta(52, 52, [("100", "1")]))  # 51 missing: gap
    # Act
    older = delta(40, 40, [("99", "1")], [("102", "1")], snapshot=True)
    refused, taken = executor.apply_record(older), streams.apply_record(older)
    # Assert
    assert isinstance(refused, OutOfOrder) and not executor.synced and executor.best_bid() == ("100", "7")
    assert isinstance(taken, Applied) and streams.synced and streams.best_bid() == ("99", "1")
    assert isinstance(executor.apply_record(delta(50, 50, [("98", "1")], [], snapshot=True)), Applied)  # same id: taken
    assert executor.synced and executor.best_bid() == ("98", "1")


def test_state_round_trip_and_a_state_saved_by_the_streams_book_before_the_shared_one_loads():
    # Arrange: written by streams.features.book.OrderBook.to_state (JSON in the book-state changelog)
    # after a snapshot 7 (bids 100.10 x 1.5, 99.9 x 2, 99.80 x 0.001; asks 100.2 x 3, 100.30 x 4.25)
    # and a delta 8..9 (bid 100.1 x 2.5, bid 99.9 x 0, ask 100.25 x 1)
    saved = json.loads(
        '{"bids": [["99.80", "0.001"], ["100.1", "2.5"]], "asks": [["100.2", "3"], ["100.25", "1"],'
        ' ["100.30", "4.25"]], "last_update_id": 9, "synced": true}'
    )
    # Act
    book = SequencedBook.from_state(saved, float_view=True)
    # Assert
    assert book.last_update_id == 9 and book.synced
    assert book.top() == ([["100.1", "2.5"], ["99.80", "0.001"]], [["100.2", "3"], ["100.25", "1"], ["100.30", "4.25"]])
    assert book.bids.floats == [0.001, 2.5] and book.asks.floats == [3.0, 1.0, 4.25]
    assert json.loads(json.dumps(book.to_state())) == saved
    assert isinstance(book.apply_record(delta(10, 10, [("99.8", "0")])), Applied)
    assert book.top(1)[0] == [["100.1", "2.5"]] and book.depth() == (1, 3)


levels = st.lists(st.tuples(st.integers(1, 60), st.integers(0, 5)), max_size=8)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 4), st.lists(st.tuples(levels, levels), min_size=1, max_size=25))
def test_a_capped_book_keeps_the_best_levels_of_the_uncapped_one(cap, updates):
    # Arrange: the same updates into a capped book and an uncapped reference, trimmed to the best `cap` levels
    capped, full = SequencedBook(float_view=True), SequencedBook()
    for i, (bids, asks) in enumerate(updates):
        d = delta(i + 1, i + 1, [(str(Decimal(p) / 4), str(q)) for p, q in bids],
                  [(str(Decimal(p + 60) / 4), str(q)) for p, q in asks], snapshot=i == 0)
        # Act
        capped.apply_record(d, max_levels=cap)
        full.apply_record(d)
        # Assert: levels never seen again keep their trimmed state; the best `cap` levels are known exactly
        assert len(capped.bids.prices) <= cap and len(capped.asks.prices) <= cap
        assert set(capped.bids.prices) <= set(full.bids.prices) and set(capped.asks.prices) <= set(full.asks.prices)
        assert all(qty(capped)[0][p] == qty(full)[0][p] for p in capped.bids.prices)
        assert capped.bids.floats == [float(qty(capped)[0][p]) for p in capped.bids.prices]
        assert [Decimal(p) for p, _ in capped.to_state()["asks"]] == capped.asks.prices
    # a snapshot into a capped book keeps exactly the best `cap` levels a side
    fresh = SequencedBook()
    fresh.apply_record(delta(99, 99, [(str(p), str(q)) for p, q in qty(full)[0].items()],
                             [(str(p), str(q)) for p, q in qty(full)[1].items()], snapshot=True), max_levels=cap)
    assert fresh.bids.prices == full.bids.prices[-cap:] and fresh.asks.prices == full.asks.prices[:cap]


def _model_decision(book_id: int, synced: bool, first: int, last: int, snapshot: bool, refuse_older: bool) -> type:
    # the rule as the feed's records promise it: a snapshot restarts the book (unless older and refused);
    # a delta applies when it carries the next update id the book needs, is old when it carries
    # nothing new, and leaves a hole otherwise
    if snapshot:
        return OutOfOrder if refuse_older and last < book_id else Applied
    if not synced:
        return NotSynced
    needed = book_id + 1
    if needed in range(first, last + 1):
        return Applied
    return OutOfOrder if last < needed else Gap


_record = st.tuples(st.integers(0, 12), st.integers(0, 3), st.booleans(), levels, levels).map(
    lambda r: delta(r[0], r[0] + r[1], [(str(p), str(q)) for p, q in r[3]],
                    [(str(p + 60), str(q)) for p, q in r[4]], snapshot=r[2])
)


@settings(max_examples=400, deadline=None)
@given(st.booleans(), st.lists(_record, min_size=1, max_size=30))
def test_decisions_state_and_levels_follow_a_hand_written_model_of_the_rule(refuse_older: bool, records: list[dict]):
    # Arrange: the model keeps (update id, synced) and price -> qty dicts; levels change only on Applied
    book = SequencedBook(float_view=True, refuse_older_snapshots=refuse_older)
    book_id, synced, model_b, model_a = -1, False, {}, {}
    for record in records:
        first, last, snapshot = record["first_update_id"], record["last_update_id"], record["snapshot"]
        expected = _model_decision(book_id, synced, first, last, snapshot, refuse_older)
        # Act
        got = book.apply_record(record)
        got_pure = decide(book_id, synced, first, last, snapshot, refuse_older)
        # Assert
        assert type(got) is expected and got == got_pure
        if expected is Applied:
            if snapshot:
                model_b, model_a = {}, {}
            for side, changes in ((model_b, record["bids"]), (model_a, record["asks"])):
                for level in changes:
                    side.pop(Decimal(level["price"]), None)
                    if Decimal(level["qty"]):
                        side[Decimal(level["price"])] = Decimal(level["qty"])
            book_id, synced = last, True
        elif expected is Gap:
            synced = False
        assert (book.last_update_id, book.synced) == (book_id, synced)
        assert qty(book) == (model_b, model_a)
        assert SequencedBook.from_state(book.to_state(), float_view=True).to_state() == book.to_state()
