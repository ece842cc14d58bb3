"""The backtest venue's matching: IOC sweeps, post-only refusals, queue fills, reading the archive ahead."""

from __future__ import annotations

from decimal import Decimal

import pytest

from backtest.replay import Event
from backtest.venue import BacktestVenue, MatchingEngine, Tape
from executor.commands import OrderType, Side, SubmitOrder, TimeInForce
from executor.venue import NotFound, Rejected

MS = 1_000_000
BASE = {"venue": "binance", "symbol": "BTCUSDT"}


def _book(at: int) -> Event:
    record = {**BASE, "snapshot": True, "first_update_id": 1, "last_update_id": 1,
              "bids": [{"price": "99", "qty": "2"}, {"price": "98", "qty": "5"}],
              "asks": [{"price": "101", "qty": "1"}, {"price": "102", "qty": "3"}], "ts_event": at, "ts_recv": at}
    return Event(at, "md.book", 0, 0, record)


def _bbo(at: int, offset: int) -> Event:
    record = {**BASE, "update_id": 2, "bid_price": "99", "bid_qty": "2", "ask_price": "101", "ask_qty": "1",
              "ts_event": at, "ts_recv": at}
    return Event(at, "md.bbo", 0, offset, record)


def _trade(at: int, price: str, qty: str, aggressor: str, offset: int) -> Event:
    record = {**BASE, "trade_id": offset, "price": price, "qty": qty, "side": aggressor, "ts_event": at, "ts_recv": at}
    return Event(at, "md.trades", 0, offset, record)


def _order(cid: str, side: Side, kind: OrderType, price: str, qty: str) -> SubmitOrder:
    tif = TimeInForce.IOC if kind is OrderType.LIMIT else None
    return SubmitOrder(cid, "s", "binance", "BTCUSDT", side, kind, tif, Decimal(price), Decimal(qty), 0, 0)


def _venue(events: list[Event], now: list[int]) -> tuple[BacktestVenue, MatchingEngine, Tape]:
    engine = MatchingEngine(20, Decimal("0.001"), Decimal("0.002"), lambda symbol: ("BTC", "USDT"))
    tape = Tape(iter(events), engine)
    venue = BacktestVenue(engine, lambda: now[0], lambda: 5 * MS, lambda at: now.__setitem__(0, max(now[0], at)))
    return venue, engine, tape


def test_an_ioc_sweeps_visible_levels_up_to_its_limit_at_their_prices_and_expires_the_rest() -> None:
    # Arrange: the book at 0 and its BBO at 1 ms; the executor acts at 0, so the order arrives at 5 ms
    now = [0]
    venue, engine, _ = _venue([_book(0), _bbo(MS, 1)], now)

    # Act
    payload = venue.submit(_order("c1", Side.BUY, OrderType.LIMIT, "102", "5"))

    # Assert: 1 at 101 and 3 at 102 (each level's visible size), 1 left: EXPIRED; a buy's taker fee in base
    assert (payload["status"], payload["executedQty"], payload["cummulativeQuoteQty"]) == ("EXPIRED", "4", "407")
    assert [(f["price"], f["qty"], f["commission"], f["commissionAsset"]) for f in payload["fills"]] == [
        ("101", "1", "0.002", "BTC"), ("102", "3", "0.006", "BTC")]
    assert engine.now == 5 * MS and now[0] == 10 * MS  # at the venue one leg later, answered one more


def test_a_post_only_order_that_would_take_is_refused_as_binance_refuses_it() -> None:
    # Arrange
    venue, _, _ = _venue([_book(0), _bbo(0, 1)], [0])

    # Act / Assert
    with pytest.raises(Rejected) as refused:
        venue.submit(_order("c1", Side.BUY, OrderType.LIMIT_MAKER, "101", "1"))
    assert refused.value.post_only_would_take


def test_a_resting_bid_fills_after_the_queue_ahead_trades_and_its_trades_are_reported_as_maker() -> None:
    # Arrange: bid 1 at 99 behind 2 visible; sells at 99 of 1.5 (10 ms) and 1 (20 ms); a buy at 99 (15 ms) never fills it
    events = [_book(0), _bbo(0, 1), _trade(10 * MS, "99", "1.5", "sell", 1), _trade(15 * MS, "99", "3", "buy", 2),
              _trade(20 * MS, "99", "1", "sell", 3)]
    now = [0]
    venue, _, tape = _venue(events, now)
    placed = venue.submit(_order("c1", Side.BUY, OrderType.LIMIT_MAKER, "99", "1"))

    # Act: the driver reads the rest of the tape; the executor then asks
    seen = [e.topic for e in tape]
    now[0] = 30 * MS
    order = venue.query("BTCUSDT", "c1")
    trades = venue.my_trades("BTCUSDT", str(order["orderId"]))

    # Assert
    assert placed["status"] == "NEW"
    assert seen == ["md.book", "md.bbo", "md.trades", "md.trades", "md.trades"]  # each once, in order, to the driver too
    assert (order["status"], order["executedQty"]) == ("PARTIALLY_FILLED", "0.5")
    assert [(t["price"], t["qty"], t["isMaker"], t["time"], t["commission"], t["commissionAsset"]) for t in trades] == [
        ("99", "0.5", True, 20, "0.0005", "BTC")]
    venue.cancel("BTCUSDT", "c1")
    with pytest.raises(NotFound):
        venue.cancel("BTCUSDT", "c1")


def test_queries_for_an_order_the_venue_never_took_say_not_found() -> None:
    # Arrange
    venue, _, _ = _venue([_book(0)], [0])

    # Act / Assert
    with pytest.raises(NotFound):
        venue.query("BTCUSDT", "nope")
    assert venue.my_trades("BTCUSDT", "42") == []
