"""OrderBook: exact decimal keys, removal, top N, crossed check."""

from __future__ import annotations

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
