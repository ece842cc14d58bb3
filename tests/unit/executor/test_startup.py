"""Start-up pieces: the venue's depth snapshot and the feed's md.book.snapshots record as feed records, the
trader's and the risk engine's parameters."""

from __future__ import annotations

from decimal import Decimal

import pytest

from executor.market import MarketView
from executor.risk import TradingState
from executor.startup import depth_records, risk_engine, seed_records, trader_config
from infra.settings import ExecutorSettings

DEPTH = {"lastUpdateId": 42, "bids": [["100.00", "1.5"], ["99.00", "2"]], "asks": [["101.00", "0.5"]]}


def test_a_depth_snapshot_becomes_the_feeds_bbo_and_book_snapshot() -> None:
    market = MarketView(10)

    bbo, book = depth_records(DEPTH, "binance", "BTCUSDT", 7)
    market.on_bbo(bbo)
    market.on_book(book)

    assert (bbo["update_id"], bbo["bid_price"], bbo["ask_qty"], bbo["ts_recv"]) == (42, "100.00", "0.5", 7)
    assert book["snapshot"] and book["first_update_id"] == book["last_update_id"] == 42
    snapshot = market.snapshot("binance", "BTCUSDT")
    assert [level[0] for level in snapshot.bids] == [Decimal("100.00"), Decimal("99.00")]
    assert snapshot.quote.mid == Decimal("100.5")


@pytest.mark.parametrize("side", ["bids", "asks"])
def test_a_depth_snapshot_with_an_empty_side_gives_nothing(side: str) -> None:
    assert depth_records(DEPTH | {side: []}, "binance", "BTCUSDT", 7) is None


SNAPSHOT = {"venue": "binance", "symbol": "BTCUSDT", "snapshot": True, "first_update_id": 42, "last_update_id": 42,
            "bids": [{"price": "99.00", "qty": "2"}, {"price": "100.00", "qty": "1.5"}],
            "asks": [{"price": "101.50", "qty": "3"}, {"price": "101.00", "qty": "0.5"}], "ts_event": 5, "ts_recv": 7}


def test_a_feed_snapshot_record_gives_the_bbo_of_its_best_levels_whatever_their_order_and_the_book() -> None:
    market = MarketView(10)

    bbo, book = seed_records(SNAPSHOT)
    market.on_bbo(bbo)
    market.on_book(book)

    assert (bbo["update_id"], bbo["bid_price"], bbo["bid_qty"], bbo["ask_price"], bbo["ask_qty"], bbo["ts_recv"]) == (
        42, "100.00", "1.5", "101.00", "0.5", 7)
    snapshot = market.snapshot("binance", "BTCUSDT")
    assert [level[0] for level in snapshot.bids] == [Decimal("100.00"), Decimal("99.00")]
    assert [level[0] for level in snapshot.asks] == [Decimal("101.00"), Decimal("101.50")]


@pytest.mark.parametrize("change", [{"snapshot": False}, {"bids": []}, {"asks": []}])
def test_a_delta_or_one_sided_snapshot_record_gives_nothing(change: dict) -> None:
    assert seed_records(SNAPSHOT | change) is None


def test_trader_durations_are_in_nanoseconds() -> None:
    s = ExecutorSettings()

    config = trader_config(s)

    assert config.poll_interval_ns == s.poll_interval_ms * 1_000_000
    assert config.max_book_age_ns == s.max_book_age_ms * 1_000_000
    assert config.policy.passive_ttl_ns == s.passive_ttl_ms * 1_000_000
    assert (config.venue, config.account, config.recv_window_ms) == (s.venue, s.account, s.recv_window_ms)


def test_the_risk_engine_gets_one_bucket_per_orders_limit_and_the_initial_state() -> None:
    s = ExecutorSettings().model_copy(update={"initial_state": "REDUCING"})
    limits = [{"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
              {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000}]

    risk = risk_engine(s, limits, lambda: 0)

    assert risk.state is TradingState.REDUCING
    assert len(risk.buckets) == 1


def test_a_bad_breach_state_fails_at_start() -> None:
    s = ExecutorSettings().model_copy(update={"reconcile_breach_state": "PANIC"})

    with pytest.raises(ValueError):
        risk_engine(s, [], lambda: 0)
