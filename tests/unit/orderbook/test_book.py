"""OrderBook: exact decimal keys, removal, top N, crossed check, and every view against a dict model."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from orderbook import OrderBook

D = Decimal


def test_levels_with_equal_decimal_value_are_one_level_and_zero_removes() -> None:
    book = OrderBook()
    book.reset([["1.10", "2"], ["1.00", "1"]], [["1.20", "3"]], 10)
    # Act: "1.1" is the same price as "1.10"; "0.000" removes
    book.apply([["1.1", "5"], ["1.00", "0.000"]], [["1.3", "1"]], 11)
    # Assert
    assert book.top() == ([["1.1", "5"]], [["1.20", "3"], ["1.3", "1"]])
    assert book.last_update_id == 11


def test_removing_an_unknown_level_is_harmless() -> None:
    book = OrderBook()
    book.reset([["1", "1"]], [], 1)
    book.apply([["0.5", "0"]], [["9", "0"]], 2)
    assert book.depth() == (1, 0)


def test_top_n_is_best_first_and_crossed_detected() -> None:
    book = OrderBook()
    book.reset([[str(p), "1"] for p in range(1, 6)], [[str(p), "1"] for p in range(6, 11)], 1)
    assert book.top(2) == ([["5", "1"], ["4", "1"]], [["6", "1"], ["7", "1"]])
    assert book.best_bid() == ("5", "1") and book.best_ask() == ("6", "1")
    assert not book.is_crossed()
    book.apply([["6", "1"]], [], 2)
    assert book.is_crossed()


def test_decimal_view_is_best_first_and_leaves_out_levels_through_a_newer_top() -> None:
    book = OrderBook()
    book.reset([["100", "1"], ["99", "4"], ["98", "9"]], [["100.5", "3"], ["101", "2.50"], ["102", "7"]], 1)
    assert book.decimal_top(2) == ([(D(100), D(1)), (D(99), D(4))], [(D("100.5"), D(3)), (D(101), D("2.5"))])
    assert book.decimal_top(5, bid_at_most=D("99.5"), ask_at_least=D(101)) == (
        [(D(99), D(4)), (D(98), D(9))], [(D(101), D("2.50")), (D(102), D(7))]
    )


def test_the_float_view_follows_every_change_and_a_reset_clears_it() -> None:
    book = OrderBook(float_view=True)
    book.reset([["1", "1"], ["2", "2.5"]], [["3", "1"]], 1)
    book.apply([["1.5", "4"], ["2", "0"], ["1.0", "3"]], [], 2)
    assert book.bids.prices == [D(1), D("1.5")] and book.bids.floats == [3.0, 4.0]
    book.reset([["0.5", "1"]], [], 3)
    assert book.bids.floats == [1.0] and book.asks.floats == [] and OrderBook().bids.floats is None


def _spelling(quarters: int, style: int) -> str:
    # a few prices, each in several spellings ("2.50", "2.500", "2.5"; "3.00", "3"), so updates hit
    # known levels under another text
    text = f"{quarters / 4:.2f}" + "0" * style
    return text.rstrip("0").rstrip(".") if style == 3 else text


_price = st.builds(_spelling, st.integers(1, 12), st.integers(0, 3))
_qty = st.sampled_from(["0", "0.000", "1", "2.50", "0.001"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.tuples(_price, _qty), max_size=8), min_size=1, max_size=12))
def test_book_matches_a_decimal_keyed_model_whatever_spelling_the_venue_uses(updates: list[list[tuple[str, str]]]) -> None:
    # model: the latest (text, qty) per Decimal price, zero quantities removed
    book, model = OrderBook(), {}
    book.reset([], [], 0)
    for i, batch in enumerate(updates):
        book.apply([list(level) for level in batch], [], i + 1)
        for price, qty in batch:
            if Decimal(qty) == 0:
                model.pop(Decimal(price), None)
            else:
                model[Decimal(price)] = [price, qty]
        bids, _ = book.top()
        assert bids == [model[k] for k in sorted(model, reverse=True)]


_batch = st.lists(st.tuples(_price, _qty), max_size=8)
_step = st.one_of(
    st.tuples(st.just("reset"), _batch, _batch),
    st.tuples(st.just("apply"), _batch, _batch),
    st.tuples(st.just("keep_best"), st.integers(0, 4)),
)


@settings(max_examples=300, deadline=None)
@given(st.booleans(), st.lists(_step, min_size=1, max_size=20), st.integers(0, 13), st.integers(0, 13), st.integers(0, 6))
def test_every_view_equals_a_plain_dict_model_after_any_snapshots_deltas_and_trims(
    float_view: bool, steps: list[tuple], bid_cut: int, ask_cut: int, depth: int
) -> None:
    # Arrange: the model is two dicts Decimal price -> the (price, qty) text last sent, nothing else
    book, model_b, model_a = OrderBook(float_view), {}, {}
    for uid, step in enumerate(steps):
        # Act
        if step[0] == "keep_best":
            book.keep_best(step[1])
            for side, worst_first in ((model_b, sorted(model_b)), (model_a, sorted(model_a, reverse=True))):
                for price in worst_first[:max(len(side) - step[1], 0)]:
                    del side[price]
        else:
            _, bids, asks = step
            if step[0] == "reset":
                book.reset(bids, asks, uid)
                model_b.clear()
                model_a.clear()
            else:
                book.apply(bids, asks, uid)
            for side, changes in ((model_b, bids), (model_a, asks)):
                for price, qty in changes:
                    if Decimal(qty) == 0:
                        side.pop(Decimal(price), None)
                    else:
                        side[Decimal(price)] = (price, qty)
        # Assert: strings, counts, best levels, crossed, floats, Decimals
        best_b, best_a = sorted(model_b, reverse=True), sorted(model_a)
        assert book.top() == ([list(model_b[p]) for p in best_b], [list(model_a[p]) for p in best_a])
        assert book.top(depth) == ([list(model_b[p]) for p in best_b[:depth]], [list(model_a[p]) for p in best_a[:depth]])
        assert book.depth() == (len(model_b), len(model_a))
        assert book.best_bid() == (model_b[best_b[0]] if best_b else None)
        assert book.best_ask() == (model_a[best_a[0]] if best_a else None)
        assert book.is_crossed() == bool(best_b and best_a and best_b[0] >= best_a[0])
        assert book.bids.prices == sorted(model_b) and book.asks.prices == best_a
        if float_view:
            assert book.bids.floats == [float(model_b[p][1]) for p in sorted(model_b)]
            assert book.asks.floats == [float(model_a[p][1]) for p in best_a]
        else:
            assert book.bids.floats is None and book.asks.floats is None
        bid_at_most, ask_at_least = Decimal(bid_cut) / 4, Decimal(ask_cut) / 4
        assert book.decimal_top(depth, bid_at_most, ask_at_least) == (
            [(p, Decimal(model_b[p][1])) for p in best_b if p <= bid_at_most][:depth],
            [(p, Decimal(model_a[p][1])) for p in best_a if p >= ask_at_least][:depth],
        )
