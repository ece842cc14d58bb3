"""Trades missing on every connection (or while the feed was down) are fetched from the venue's trade history."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from producers.binance import parse, urls
from producers.binance.feed import BinanceSpotAdapter
from producers.errors import ParseError
from producers.health import FeedEvents
from producers.metrics import FeedMetrics
from producers.pipeline import Callbacks, FeedPipeline
from schemas.serde import AvroSerde
from schemas.topics import Topic

MS = 1_000_000
BASE = "http://x"


def _trade(t: int) -> bytes:
    return orjson.dumps({"stream": "btcusdt@trade", "data": {
        "e": "trade", "E": 1000 + t, "s": "BTCUSDT", "t": t, "p": f"{100 + t}.10", "q": "0.5",
        "T": 1000 + t, "m": t % 2 == 0, "M": True}})


def _history(ids: range) -> bytes:
    return orjson.dumps([
        {"id": t, "price": f"{100 + t}.10", "qty": "0.5", "quoteQty": "1", "time": 1000 + t,
         "isBuyerMaker": t % 2 == 0, "isBestMatch": True}
        for t in ids
    ])


class _Run:
    def __init__(self, max_backfill: int = 100_000) -> None:
        self.records: list[tuple[str, dict[str, Any]]] = []
        self.trade_requests: list[tuple[str, int]] = []
        self.pipeline = FeedPipeline(
            BinanceSpotAdapter(), ["BTCUSDT"], self._sink, FeedEvents("binance", "test"),
            FeedMetrics(CollectorRegistry()),
            callbacks=Callbacks(request_trades=lambda s, f: self.trade_requests.append((s, f))),
            hold_ns=100 * MS, max_backfill_trades=max_backfill,
        )
        self.serde = AvroSerde()

    def _sink(self, topic: str, key: bytes, name: str, record: dict[str, Any]) -> None:
        self.serde.encode(name, record)  # every record must fit its schema
        self.records.append((topic, record))

    def trade_ids(self) -> list[int]:
        return [r["trade_id"] for t, r in self.records if t == Topic.TRADES]

    def health(self, kind: str) -> list[dict[str, Any]]:
        return [r for t, r in self.records if t == Topic.HEALTH and r["kind"] == kind]

    def page(self, from_id: int, ids: range, now: int) -> None:
        self.pipeline.rest(urls.historical_trades_url(BASE, "BTCUSDT", from_id), _history(ids), now)


def test_trades_missing_on_every_connection_are_backfilled_once_and_reported_recovered() -> None:
    # Arrange: trades 4..6 never arrive on the only connection
    run = _Run()
    p = run.pipeline
    p.open("c0#1", "ws://x", 0)
    for t in (1, 2, 3, 7, 8):
        p.frame("c0#1", _trade(t), t * MS)
    p.tick(500 * MS)
    assert run.trade_requests == [("BTCUSDT", 4)]

    # Act: the venue's history page starts at 4 and also holds trades already published
    run.page(4, range(4, 9), 600 * MS)

    # Assert
    assert sorted(run.trade_ids()) == list(range(1, 9))
    assert len(run.trade_ids()) == 8
    gap, = run.health("gap")
    recovered, = run.health("recovered")
    assert (gap["first_update_id"], gap["last_update_id"], gap["count"]) == (4, 6, 3)
    assert (recovered["first_update_id"], recovered["last_update_id"], recovered["count"]) == (4, 6, 3)
    backfilled = next(r for t, r in run.records if t == Topic.TRADES and r["trade_id"] == 5)
    assert backfilled == {
        "venue": "binance", "symbol": "BTCUSDT", "trade_id": 5, "price": "105.10", "qty": "0.5",
        "side": "buy", "ts_event": 1005 * MS, "ts_recv": 600 * MS,
    }


def test_a_long_gap_is_fetched_page_by_page_until_complete() -> None:
    # Arrange: 1..2 live, 3..2502 missing, 2503 live
    run = _Run()
    p = run.pipeline
    p.open("c0#1", "ws://x", 0)
    for t in (1, 2, 2503):
        p.frame("c0#1", _trade(t), MS)
    p.tick(500 * MS)

    # Act: pages of at most 1000, as the venue serves them
    while run.trade_requests:
        _, start = run.trade_requests.pop(0)
        run.page(start, range(start, min(start + 1000, 2504)), 600 * MS)

    # Assert
    assert sorted(run.trade_ids()) == list(range(1, 2504))
    assert len(run.trade_ids()) == 2503
    assert len(run.health("recovered")) == 1


def test_a_restarted_feed_backfills_after_the_last_trade_the_previous_run_published() -> None:
    # Arrange: the previous process published up to 10; the first live trade is 15
    run = _Run()
    p = run.pipeline
    p.resume_trades("BTCUSDT", 10)
    p.open("c0#1", "ws://x", 0)
    p.frame("c0#1", _trade(15), MS)

    # Act
    run.page(11, range(11, 16), 2 * MS)
    p.frame("c0#1", _trade(10), 3 * MS)  # an old trade (never on a live stream, but it must not double)

    # Assert
    assert run.trade_requests == [("BTCUSDT", 11)]
    assert sorted(run.trade_ids()) == list(range(11, 16))


def test_ids_the_venue_no_longer_has_are_reported_lost_and_not_asked_again() -> None:
    # Arrange
    run = _Run()
    p = run.pipeline
    p.open("c0#1", "ws://x", 0)
    for t in (1, 9):
        p.frame("c0#1", _trade(t), MS)
    p.tick(500 * MS)

    # Act: the venue answers with an empty page (history pruned)
    run.page(2, range(0), 600 * MS)

    # Assert
    lost = [r for r in run.health("other") if "lost" in r["detail"]]
    assert [(r["first_update_id"], r["last_update_id"]) for r in lost] == [(2, 8)]
    assert run.trade_requests == [("BTCUSDT", 2)]


def test_a_gap_beyond_the_backfill_bound_keeps_the_newest_trades_and_reports_the_rest_lost() -> None:
    run = _Run(max_backfill=3)
    p = run.pipeline
    p.open("c0#1", "ws://x", 0)
    for t in (1, 10):
        p.frame("c0#1", _trade(t), MS)
    p.tick(500 * MS)

    assert run.trade_requests == [("BTCUSDT", 7)]
    lost, = [r for r in run.health("other") if "lost" in r["detail"]]
    assert (lost["first_update_id"], lost["last_update_id"], lost["count"]) == (2, 6, 5)


def test_a_retriable_history_failure_asks_again_and_a_final_one_gives_up() -> None:
    run = _Run()
    p = run.pipeline
    p.open("c0#1", "ws://x", 0)
    for t in (1, 5):
        p.frame("c0#1", _trade(t), MS)
    p.tick(500 * MS)

    p.trades_failed("BTCUSDT", "HTTP 503", True, 600 * MS)
    p.trades_failed("BTCUSDT", "HTTP 400", False, 700 * MS)
    run.page(2, range(2, 5), 800 * MS)

    assert run.trade_requests == [("BTCUSDT", 2), ("BTCUSDT", 2)]
    assert run.trade_ids() == [1, 5]


def test_historical_trades_parser_keeps_venue_strings_and_rejects_malformed_bodies() -> None:
    trades = parse.parse_historical_trades(_history(range(7, 9)), "BTCUSDT", 5)
    assert [(t["trade_id"], t["price"], t["side"]) for t in trades] == [(7, "107.10", "buy"), (8, "108.10", "sell")]
    for body in (b"{}", b"[{\"id\": 1}]", b"[{\"id\": 1, \"price\": 1.5, \"qty\": \"1\", \"time\": 1, \"isBuyerMaker\": true}]", b"nope"):
        with pytest.raises(ParseError):
            parse.parse_historical_trades(body, "BTCUSDT", 5)
    assert urls.is_historical_trades_url(urls.historical_trades_url(BASE, "btcusdt", 3))
    assert not urls.is_historical_trades_url(urls.depth_snapshot_url(BASE, "BTCUSDT"))


def test_backfill_bound_zero_turns_backfill_off() -> None:
    run = _Run(max_backfill=0)
    p = run.pipeline
    p.open("c0#1", "ws://x", 0)
    for t in (1, 4):
        p.frame("c0#1", _trade(t), MS)
    p.tick(500 * MS)

    assert run.trade_requests == []
    assert run.trade_ids() == [1, 4]


def test_a_venue_whose_trade_ids_went_back_is_not_resumed_and_its_trades_are_kept() -> None:
    # Arrange: the earlier run saw ids up to 500; this venue starts again from 3
    run = _Run()
    p = run.pipeline
    p.resume_trades("BTCUSDT", 500)
    p.open("c0#1", "ws://x", 0)

    # Act
    for t in (3, 4, 5):
        p.frame("c0#1", _trade(t), t * MS)

    # Assert
    assert run.trade_ids() == [3, 4, 5]
    assert run.trade_requests == []
    reset, = [r for r in run.health("other") if "reset" in r["detail"]]
    assert (reset["first_update_id"], reset["last_update_id"]) == (3, 500)


def test_a_trade_history_answer_without_or_with_an_unknown_symbol_goes_to_dlq() -> None:
    # Arrange
    run = _Run()
    # Act: neither may stop the feed
    run.pipeline.rest(f"{BASE}/api/v3/historicalTrades?fromId=4", _history(range(4, 6)), MS)
    run.pipeline.rest(urls.historical_trades_url(BASE, "ETHUSDT", 4), _history(range(4, 6)), 2 * MS)
    # Assert
    errors = [r["error"] for t, r in run.records if t == Topic.DLQ]
    assert errors[0].startswith("trades url without symbol") and errors[1] == "trades of unknown symbol 'ETHUSDT'"
    assert run.trade_ids() == []
