"""Market-data routing: each md record kind reaches its part of the MarketView, anything else is ignored."""

from __future__ import annotations

from decimal import Decimal

from executor.feeds import apply_market_record
from executor.market import MarketView
from schemas.serde import AvroSerde

SERDE = AvroSerde()


def _decoded(name: str, record: dict) -> tuple[str, dict]:
    return SERDE.decode(SERDE.encode(name, record))  # as the consumer hands them over


def test_bbo_and_book_records_reach_the_market_view() -> None:
    market = MarketView(10)
    bbo = {"venue": "binance", "symbol": "BTCUSDT", "update_id": 7, "bid_price": "100", "bid_qty": "1",
           "ask_price": "101", "ask_qty": "2", "ts_event": 0, "ts_recv": 0}
    book = {"venue": "binance", "symbol": "BTCUSDT", "snapshot": True, "first_update_id": 7, "last_update_id": 7,
            "bids": [{"price": "100", "qty": "1"}, {"price": "99", "qty": "4"}],
            "asks": [{"price": "101", "qty": "2"}], "ts_event": 0, "ts_recv": 0}

    assert apply_market_record(market, *_decoded("BBO", bbo))
    assert apply_market_record(market, *_decoded("BookDelta", book))

    assert market.quote("binance", "BTCUSDT").mid == Decimal("100.5")
    assert [level[0] for level in market.snapshot("binance", "BTCUSDT").bids] == [Decimal(100), Decimal(99)]


def test_a_feed_event_without_an_instrument_and_other_records_are_not_applied() -> None:
    market = MarketView(10)

    assert not apply_market_record(market, "FeedEvent", {"symbol": "", "kind": "disconnected"})
    assert not apply_market_record(market, "Trade", {"venue": "binance", "symbol": "BTCUSDT"})
    assert market.quote("binance", "BTCUSDT") is None
