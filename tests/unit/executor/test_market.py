"""Market view: BBO ordering, book only after a snapshot, depth trimmed to the live quote."""

from __future__ import annotations

from decimal import Decimal

from executor.commands import Side
from executor.market import MarketView

D = Decimal


def _bbo(uid: int, bid: str, ask: str) -> dict:
    return {"venue": "binance", "symbol": "BTCUSDT", "update_id": uid, "bid_price": bid, "bid_qty": "1",
            "ask_price": ask, "ask_qty": "2", "ts_event": 0, "ts_recv": 0}


def _book(snapshot: bool, uid: int, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> dict:
    return {"venue": "binance", "symbol": "BTCUSDT", "snapshot": snapshot, "first_update_id": uid,
            "last_update_id": uid, "bids": [{"price": p, "qty": q} for p, q in bids],
            "asks": [{"price": p, "qty": q} for p, q in asks], "ts_event": 0, "ts_recv": 0}


def test_an_older_bbo_does_not_replace_a_newer_one() -> None:
    market = MarketView(10)
    market.on_bbo(_bbo(5, "100", "101"))

    market.on_bbo(_bbo(4, "90", "91"))

    assert market.quote("binance", "BTCUSDT").bid == D("100")
    assert market.quote("binance", "BTCUSDT").mid == D("100.5")


def test_without_a_book_snapshot_the_depth_is_the_top_level() -> None:
    market = MarketView(10)
    market.on_bbo(_bbo(1, "100", "101"))
    market.on_book(_book(False, 2, [("99", "5")], [("102", "5")]))

    snap = market.snapshot("binance", "BTCUSDT")

    assert snap.bids == ((D("100"), D("1")),) and snap.asks == ((D("101"), D("2")),)


def test_book_levels_apply_after_a_snapshot_and_stale_levels_are_dropped() -> None:
    market = MarketView(2)
    market.on_bbo(_bbo(3, "100", "101"))
    market.on_book(_book(True, 1, [("100", "1"), ("99", "4"), ("98", "9")], [("100.5", "3"), ("101", "2"), ("102", "7")]))
    market.on_book(_book(False, 2, [("99", "0")], [("103", "1")]))

    snap = market.snapshot("binance", "BTCUSDT")

    assert snap.bids == ((D("100"), D("1")), (D("98"), D("9")))
    assert snap.asks == ((D("101"), D("2")), (D("102"), D("7")))  # 100.5 is through the live ask: stale
    assert snap.opposite(Side.BUY) == snap.asks and snap.same(Side.BUY) == snap.bids


def test_no_quote_means_no_snapshot() -> None:
    assert MarketView(5).snapshot("binance", "ETHUSDT") is None
