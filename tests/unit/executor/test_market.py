"""Market view: BBO ordering, book only after a snapshot, depth trimmed to the live quote."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

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


_level = st.tuples(st.integers(96, 105), st.sampled_from(["0", "1", "2.5", "0.000"]))
_record = st.tuples(st.booleans(), st.integers(0, 12), st.integers(0, 2), st.lists(_level, max_size=4),
                    st.lists(_level, max_size=4))


@settings(max_examples=300, deadline=None)
@given(st.lists(_record, max_size=25), st.integers(96, 104), st.integers(1, 4), st.integers(1, 4))
def test_visible_depth_equals_a_dict_book_that_ignores_older_snapshots_and_stops_at_a_gap(
    records: list[tuple], bid: int, width: int, depth: int
) -> None:
    # Arrange: the model is the executor's rule written out on two dicts (bids and asks share prices
    # 96..105, so the book may cross; the live quote decides what is visible)
    market = MarketView(depth)
    market.on_bbo({**_bbo(1, str(bid), str(bid + width)), "bid_qty": "3", "ask_qty": "4"})
    model: dict[str, dict[Decimal, Decimal]] | None = None
    model_id, gapped = -1, False
    for snapshot, first, span, bids, asks in records:
        record = {**_book(snapshot, first, [(str(p), q) for p, q in bids], [(str(p), q) for p, q in asks]),
                  "last_update_id": first + span}
        # Act
        market.on_book(record)
        if snapshot and (model is None or first + span >= model_id):
            model, model_id, gapped = {"bids": {}, "asks": {}}, -1, False
        if model is None or first + span <= model_id or (not snapshot and (gapped or first > model_id + 1)):
            gapped = gapped or (model is not None and not snapshot and first + span > model_id)
            continue
        for side, levels in (("bids", bids), ("asks", asks)):
            for p, q in levels:
                model[side].pop(D(p), None)
                if D(q):
                    model[side][D(p)] = D(q)
        model_id = first + span
    # Assert: levels through the quote are left out, the quote's level leads, depth-limited
    snap = market.snapshot("binance", "BTCUSDT")
    q_bid, q_ask = (D(bid), D(3)), (D(bid + width), D(4))
    if model is None or not model["bids"] or not model["asks"]:
        assert (snap.bids, snap.asks) == ((q_bid,), (q_ask,))
        return
    bids = sorted(((p, q) for p, q in model["bids"].items() if p <= q_bid[0]), reverse=True)
    asks = sorted((p, q) for p, q in model["asks"].items() if p >= q_ask[0])
    bids = bids if bids and bids[0][0] == q_bid[0] else [q_bid, *bids]
    asks = asks if asks and asks[0][0] == q_ask[0] else [q_ask, *asks]
    assert snap.bids == tuple(bids[:depth]) and snap.asks == tuple(asks[:depth])
    gap_reason = market.unfit("binance", "BTCUSDT", 0, 0)
    assert (gap_reason is not None) == gapped
