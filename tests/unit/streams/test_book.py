"""Book features of the shared order book's float view against naive formulas.

The book itself (levels, update-id rule, state) is tested in tests/unit/orderbook/.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from orderbook import SequencedBook
from streams.features.book import book_features, features_with_top, imbalance, new_book


def delta(first: int, last: int, bids=(), asks=(), snapshot: bool = False) -> dict:
    return {
        "snapshot": snapshot, "first_update_id": first, "last_update_id": last,
        "bids": [{"price": p, "qty": q} for p, q in bids], "asks": [{"price": p, "qty": q} for p, q in asks],
    }


def test_features_of_a_small_book():
    # Arrange: bids 100 x 1, 99 x 3; asks 102 x 3, 103 x 1
    book = new_book()
    book.apply_record(delta(1, 1, [("100", "1"), ("99", "3")], [("102", "3"), ("103", "1")], snapshot=True))
    # Act
    f = book_features(book, depth_band_bps=150)
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
    book = new_book()
    book.apply_record(delta(1, 1, [("101", "1")], [("100", "1")], snapshot=True))
    assert book_features(book) is None
    book.apply_record(delta(2, 2, [("101", "0")], []))
    assert book_features(book) is None


levels = st.lists(
    st.tuples(st.integers(1, 60), st.integers(0, 5)), max_size=8
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(levels, levels), min_size=1, max_size=25))
def test_book_matches_naive_dicts_and_features_match_naive_formulas(updates):
    # Arrange: bids at prices 1..60, asks at 61..120 so the book never crosses
    book, ref_b, ref_a = new_book(), {}, {}
    uid = 0
    for i, (bids, asks) in enumerate(updates):
        uid += 1
        b = [(str(Decimal(p) / 4), str(q)) for p, q in bids]
        a = [(str(Decimal(p + 60) / 4), str(q)) for p, q in asks]
        # Act
        book.apply_record(delta(uid, uid, b, a, snapshot=i == 0))
        if i == 0:
            ref_b.clear(), ref_a.clear()
        for side, changes in ((ref_b, b), (ref_a, a)):
            for p, q in changes:
                if Decimal(q) == 0:
                    side.pop(Decimal(p), None)
                else:
                    side[Decimal(p)] = Decimal(q)
        # Assert
        bids_d, asks_d = book.decimal_top(len(ref_b) + len(ref_a))
        assert dict(bids_d) == ref_b and dict(asks_d) == ref_a
        assert book.bids.prices == sorted(ref_b) and book.asks.prices == sorted(ref_a)
        assert book.bids.floats == [float(ref_b[p]) for p in sorted(ref_b)]
        assert [Decimal(p) for p, _ in book.to_state()["asks"]] == sorted(ref_a)
        f = book_features(book)
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
        assert SequencedBook.from_state(book.to_state(), float_view=True).to_state() == book.to_state()


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
    book = new_book()
    book.apply_record(delta(1, 1, bids, asks, snapshot=True))
    bid, ask = Decimal(bid_tick) / 4, Decimal(bid_tick + width) / 4
    # the reference: the same book with levels better than the BBO removed and the BBO's levels set
    applied = new_book()
    applied.apply_record(delta(1, 1, [(p, q) for p, q in bids if Decimal(p) < bid] + [(str(bid), str(bid_qty))],
                        [(p, q) for p, q in asks if Decimal(p) > ask] + [(str(ask), str(ask_qty))], snapshot=True))
    before = book.to_state()
    # Act
    got = features_with_top(book, bid, Decimal(bid_qty), ask, Decimal(ask_qty))
    # Assert
    assert got == book_features(applied)
    assert book.to_state() == before  # the book itself is untouched


def test_features_with_a_crossed_or_empty_top_are_none():
    book = new_book()
    book.apply_record(delta(1, 1, [("100", "1")], [("101", "1")], snapshot=True))
    assert features_with_top(book, Decimal(101), Decimal(1), Decimal(101), Decimal(1)) is None
    assert features_with_top(book, Decimal(100), Decimal(0), Decimal(101), Decimal(1)) is None


def test_a_book_state_saved_before_the_shared_book_gives_its_features():
    # Arrange: the streams' book-state JSON as the previous book class wrote it (bids 99.80 x 0.001,
    # 100.1 x 2.5; asks 100.2 x 3, 100.25 x 1, 100.30 x 4.25; update id 9)
    saved = {"bids": [["99.80", "0.001"], ["100.1", "2.5"]],
             "asks": [["100.2", "3"], ["100.25", "1"], ["100.30", "4.25"]], "last_update_id": 9, "synced": True}
    # Act
    f = book_features(SequencedBook.from_state(saved, float_view=True))
    # Assert: band 100.15 +- 0.10015 holds bid 100.1 and asks 100.2, 100.25
    assert f is not None and f.mid == (100.1 + 100.2) / 2
    assert f.imbalance_1 == (2.5 - 3) / (2.5 + 3) and f.imbalance_5 == (2.501 - 8.25) / (2.501 + 8.25)
    assert f.depth_bid_10bps == 2.5 and f.depth_ask_10bps == 4.0
