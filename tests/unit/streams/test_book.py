"""Order book sync and book features against a naive reference."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.features.book import Applied, Gap, NotSynced, OrderBook, OutOfOrder, imbalance


def delta(first: int, last: int, bids=(), asks=(), snapshot: bool = False) -> dict:
    return {
        "snapshot": snapshot, "first_update_id": first, "last_update_id": last,
        "bids": [{"price": p, "qty": q} for p, q in bids], "asks": [{"price": p, "qty": q} for p, q in asks],
    }


def test_snapshot_then_contiguous_delta_applies_and_zero_qty_removes_level():
    # Arrange
    book = OrderBook()
    # Act
    r1 = book.apply(delta(10, 10, [("100.0", "1"), ("99.5", "2")], [("100.5", "3")], snapshot=True))
    r2 = book.apply(delta(11, 12, [("100.0", "0")], [("100.25", "4")]))
    # Assert
    assert isinstance(r1, Applied) and isinstance(r2, Applied)
    assert book.bids.prices == [Decimal("99.5")]
    assert book.asks.prices == [Decimal("100.25"), Decimal("100.5")]
    assert book.last_update_id == 12


def test_delta_before_snapshot_is_not_applied():
    book = OrderBook()
    assert isinstance(book.apply(delta(1, 1, [("1", "1")])), NotSynced)
    assert book.bids.prices == []


def test_old_update_is_out_of_order_and_leaves_book_unchanged():
    book = OrderBook()
    book.apply(delta(10, 10, [("100", "1")], [("101", "1")], snapshot=True))
    result = book.apply(delta(9, 10, [("100", "5")]))
    assert isinstance(result, OutOfOrder)
    assert book.bids.qty[Decimal(100)] == Decimal(1)


def test_gap_unsyncs_until_next_snapshot():
    book = OrderBook()
    book.apply(delta(10, 10, [("100", "1")], [("101", "1")], snapshot=True))
    assert isinstance(book.apply(delta(12, 12, [("100", "2")])), Gap)
    assert not book.synced
    assert isinstance(book.apply(delta(13, 13, [("100", "2")])), NotSynced)
    assert isinstance(book.apply(delta(20, 20, [("100", "3")], [("101", "1")], snapshot=True)), Applied)
    assert book.synced and book.bids.qty[Decimal(100)] == Decimal(3)


def test_overlapping_first_delta_after_snapshot_applies():
    # Binance-style: the first delta after a snapshot may start before snapshot id + 1
    book = OrderBook()
    book.apply(delta(100, 100, [("1", "1")], [("2", "1")], snapshot=True))
    assert isinstance(book.apply(delta(95, 105, [("1", "3")])), Applied)


def test_features_of_a_small_book():
    # Arrange: bids 100 x 1, 99 x 3; asks 102 x 3, 103 x 1
    book = OrderBook()
    book.apply(delta(1, 1, [("100", "1"), ("99", "3")], [("102", "3"), ("103", "1")], snapshot=True))
    # Act
    f = book.features(depth_band_bps=150)
    # Assert
    assert f is not None
    assert f.mid == 101.0 and f.spread == 2.0
    assert abs(f.spread_bps - 2.0 / 101.0 * 1e4) < 1e-9
    assert f.microprice == (100 * 3 + 102 * 1) / 4
    assert f.imbalance_1 == (1 - 3) / 4
    assert f.imbalance_5 == 0.0
    # band 101 +- 1.515: bids >= 99.485 -> 100 only; asks <= 102.515 -> 102 only
    assert f.depth_bid_10bps == 1.0 and f.depth_ask_10bps == 3.0


def test_crossed_or_one_sided_book_has_no_features():
    book = OrderBook()
    book.apply(delta(1, 1, [("101", "1")], [("100", "1")], snapshot=True))
    assert book.features() is None
    book.apply(delta(2, 2, [("101", "0")], []))
    assert book.features() is None


levels = st.lists(
    st.tuples(st.integers(1, 60), st.integers(0, 5)), max_size=8
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(levels, levels), min_size=1, max_size=25))
def test_book_matches_naive_dicts_and_features_match_naive_formulas(updates):
    # Arrange: bids at prices 1..60, asks at 61..120 so the book never crosses
    book, ref_b, ref_a = OrderBook(), {}, {}
    uid = 0
    for i, (bids, asks) in enumerate(updates):
        uid += 1
        b = [(str(Decimal(p) / 4), str(q)) for p, q in bids]
        a = [(str(Decimal(p + 60) / 4), str(q)) for p, q in asks]
        # Act
        book.apply(delta(uid, uid, b, a, snapshot=i == 0))
        if i == 0:
            ref_b.clear(), ref_a.clear()
        for side, changes in ((ref_b, b), (ref_a, a)):
            for p, q in changes:
                if Decimal(q) == 0:
                    side.pop(Decimal(p), None)
                else:
                    side[Decimal(p)] = Decimal(q)
        # Assert
        assert book.bids.qty == ref_b and book.asks.qty == ref_a
        assert book.bids.prices == sorted(ref_b) and book.asks.prices == sorted(ref_a)
        assert book.bids.fqty == [float(ref_b[p]) for p in sorted(ref_b)]
        assert [Decimal(p) for p, _ in book.asks.text] == sorted(ref_a)
        f = book.features()
        if not ref_b or not ref_a:
            assert f is None
            continue
        bb, ba = max(ref_b), min(ref_a)
        top_b = [float(ref_b[p]) for p in sorted(ref_b, reverse=True)]
        top_a = [float(ref_a[p]) for p in sorted(ref_a)]
        mid = (float(bb) + float(ba)) / 2
        assert f.mid == mid
        assert f.imbalance_5 == imbalance(top_b[:5], top_a[:5])
        assert f.imbalance_10 == imbalance(top_b[:10], top_a[:10])
        lo, hi = mid * (1 - 1e-3), mid * (1 + 1e-3)
        assert abs(f.depth_bid_10bps - sum(float(q) for p, q in ref_b.items() if float(p) >= lo)) < 1e-9
        assert abs(f.depth_ask_10bps - sum(float(q) for p, q in ref_a.items() if float(p) <= hi)) < 1e-9
        assert OrderBook.from_state(book.to_state()).to_state() == book.to_state()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 240), st.integers(1, 5)), max_size=30),
    st.integers(1, 239), st.integers(1, 120), st.integers(1, 5), st.integers(1, 5),
)
def test_features_with_a_newer_top_equal_the_features_of_the_book_with_that_top_applied(
    raw_levels, bid_tick, width, bid_qty, ask_qty
):
    # Arrange: any uncrossed book, and a BBO anywhere (it may cross the old book's levels)
    prices = sorted({p for p, _ in raw_levels})
    split = len(prices) // 2
    qty = dict(raw_levels)
    bids = [(str(Decimal(p) / 4), str(qty[p])) for p in prices[:split]]
    asks = [(str(Decimal(p) / 4), str(qty[p])) for p in prices[split:]]
    book = OrderBook()
    book.apply(delta(1, 1, bids, asks, snapshot=True))
    bid, ask = Decimal(bid_tick) / 4, Decimal(bid_tick + width) / 4
    # the reference: the same book with levels better than the BBO removed and the BBO's levels set
    applied = OrderBook()
    applied.apply(delta(1, 1, [(p, q) for p, q in bids if Decimal(p) < bid] + [(str(bid), str(bid_qty))],
                        [(p, q) for p, q in asks if Decimal(p) > ask] + [(str(ask), str(ask_qty))], snapshot=True))
    before = book.to_state()
    # Act
    got = book.features_with_top(bid, Decimal(bid_qty), ask, Decimal(ask_qty))
    # Assert
    assert got == applied.features()
    assert book.to_state() == before  # the book itself is untouched


def test_features_with_a_crossed_or_empty_top_are_none():
    book = OrderBook()
    book.apply(delta(1, 1, [("100", "1")], [("101", "1")], snapshot=True))
    assert book.features_with_top(Decimal(101), Decimal(1), Decimal(101), Decimal(1)) is None
    assert book.features_with_top(Decimal(100), Decimal(0), Decimal(101), Decimal(1)) is None


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 4), st.lists(st.tuples(levels, levels), min_size=1, max_size=25))
def test_a_capped_book_keeps_the_best_levels_of_the_uncapped_one(cap, updates):
    # Arrange: the same updates into a capped book and an uncapped reference, trimmed to the best `cap` levels
    capped, full = OrderBook(), OrderBook()
    for i, (bids, asks) in enumerate(updates):
        d = delta(i + 1, i + 1, [(str(Decimal(p) / 4), str(q)) for p, q in bids],
                  [(str(Decimal(p + 60) / 4), str(q)) for p, q in asks], snapshot=i == 0)
        # Act
        capped.apply(d, max_levels=cap)
        full.apply(d)
        # Assert: levels never seen again keep their trimmed state; the best `cap` levels are known exactly
        assert len(capped.bids.prices) <= cap and len(capped.asks.prices) <= cap
        assert set(capped.bids.prices) <= set(full.bids.prices) and set(capped.asks.prices) <= set(full.asks.prices)
        assert all(capped.bids.qty[p] == full.bids.qty[p] for p in capped.bids.prices)
        assert capped.bids.fqty == [float(capped.bids.qty[p]) for p in capped.bids.prices]
        assert [Decimal(p) for p, _ in capped.asks.text] == capped.asks.prices
    # a snapshot into a capped book keeps exactly the best `cap` levels a side
    fresh = OrderBook()
    fresh.apply(delta(99, 99, [(str(p), str(q)) for p, q in full.bids.qty.items()],
                      [(str(p), str(q)) for p, q in full.asks.qty.items()], snapshot=True), max_levels=cap)
    assert fresh.bids.prices == full.bids.prices[-cap:] and fresh.asks.prices == full.asks.prices[:cap]
