"""OrderBook: exact decimal keys, removal, top N, crossed check."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from producers.order_book import OrderBook


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
