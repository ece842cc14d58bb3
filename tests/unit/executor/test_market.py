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


def _health(kind: str, ts_recv: int) -> dict:
    return {"venue": "binance", "symbol": "BTCUSDT", "kind": kind, "ts_recv": ts_recv}


def _fresh(market: MarketView, at: int) -> None:
    market.on_bbo({**_bbo(at, "100", "101"), "ts_recv": at})
    market.on_book({**_book(True, at, [("100", "1")], [("101", "1")]), "ts_recv": at})


def test_a_stale_health_event_makes_the_book_unfit_until_recovered() -> None:
    market = MarketView(10)
    _fresh(market, 10)
    assert market.unfit("binance", "BTCUSDT", 11, 0) is None

    market.on_health(_health("stale", 12))
    assert "stale" in market.unfit("binance", "BTCUSDT", 13, 0)

    market.on_health(_health("recovered", 14))
    assert market.unfit("binance", "BTCUSDT", 15, 0) is None


def test_a_snapshot_received_after_the_health_event_clears_it_an_older_one_does_not() -> None:
    market = MarketView(10)
    _fresh(market, 10)
    market.on_health(_health("gap", 20))

    _fresh(market, 19)  # received before the gap was reported
    assert market.unfit("binance", "BTCUSDT", 21, 0) is not None
    _fresh(market, 21)
    assert market.unfit("binance", "BTCUSDT", 22, 0) is None


def test_an_update_id_gap_in_the_deltas_makes_the_book_unfit_until_the_next_snapshot() -> None:
    market = MarketView(10)
    _fresh(market, 10)
    delta = {**_book(False, 12, [("100", "2")], []), "first_update_id": 12, "ts_recv": 12}  # 11 is missing

    market.on_book(delta)

    assert "gap" in market.unfit("binance", "BTCUSDT", 13, 0)
    assert market.snapshot("binance", "BTCUSDT").bids[0] == (D("100"), D("1"))  # the gapped delta was not applied
    _fresh(market, 20)
    assert market.unfit("binance", "BTCUSDT", 21, 0) is None


def test_market_data_older_than_the_limit_is_unfit() -> None:
    market = MarketView(10)
    _fresh(market, 1_000)

    assert market.unfit("binance", "BTCUSDT", 1_500, 500) is None
    assert "old" in market.unfit("binance", "BTCUSDT", 1_501, 500)
    assert market.unfit("binance", "BTCUSDT", 10**12, 0) is None  # 0: no age limit


def test_an_older_snapshot_does_not_replace_a_newer_book() -> None:
    market = MarketView(10)
    market.on_bbo(_bbo(50, "100", "101"))
    market.on_book(_book(True, 50, [("100", "7")], [("101", "7")]))

    market.on_book(_book(True, 40, [("99", "1")], [("102", "1")]))

    snap = market.snapshot("binance", "BTCUSDT")
    assert snap.bids[0] == (D("100"), D("7")) and snap.asks[0] == (D("101"), D("7"))
