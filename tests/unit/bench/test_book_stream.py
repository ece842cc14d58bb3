"""The order-book bench's Binance-like stream is a valid one: every record applies, the book never crosses."""

from __future__ import annotations

from bench.book import binance_like
from orderbook import Applied, SequencedBook


def test_the_binance_like_stream_applies_in_order_and_never_crosses() -> None:
    # Arrange
    records = binance_like(seed=3, depth=200, deltas=300, levels=20)
    book = SequencedBook()
    # Act / Assert
    for record in records:
        assert type(book.apply_record(record)) is Applied
        assert not book.is_crossed()
    assert records[0]["snapshot"] and len(records[0]["bids"]) == len(records[0]["asks"]) == 200
    per_delta = [len(r["bids"]) + len(r["asks"]) for r in records[1:]]
    assert 15 <= sum(per_delta) / len(per_delta) <= 25  # 20 drawn a delta, repeats merged, crossed levels added
