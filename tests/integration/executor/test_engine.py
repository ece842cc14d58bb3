"""The executor against the real broker and the real simulated exchange over ccxt."""

from __future__ import annotations

import time
from collections import defaultdict
from decimal import Decimal

import pytest
import requests

from executor.control import send_control
from executor.ids import client_order_id
from executor.risk import TradingState
from executor.venue import BinanceVenue
from infra.settings import KafkaSettings
from schemas.topics import Topic
from tests.integration.executor.harness import (
    MarketBridge,
    executor_settings,
    new_account,
    order_events,
    produce,
    produce_signals,
    records,
    running_engine,
    signal,
)
from tests.polling import wait_for

pytestmark = [pytest.mark.integration]
TERMINAL = {"filled", "canceled", "rejected", "expired", "denied"}


def _done(engine, n: int) -> bool:
    return engine.metrics.signals.labels("done")._value.get() >= n


@pytest.mark.timeout(90)
def test_signals_become_venue_orders_with_events_fills_and_positions(
    kafka_settings: KafkaSettings, executor_sim_url: str, market_bridge: MarketBridge
) -> None:
    # Arrange
    key, secret = new_account(executor_sim_url)
    settings = executor_settings(executor_sim_url, key, secret)
    venue = BinanceVenue(executor_sim_url, key, secret, 3000)
    before = venue.balances()

    # Act
    with running_engine(settings, kafka_settings) as engine:
        wait_for(lambda: engine.recover_below, 20, "signals partitions assigned")
        takers = [signal("BTCUSDT", "buy", "0.002", urgency=1.0) for _ in range(4)]
        makers = [signal("ETHUSDT", "buy", "0.05", urgency=0.0, expires_in_s=3)]
        ids = {s["signal_id"] for s in takers + makers}
        produce_signals(kafka_settings, takers + makers)
        wait_for(lambda: _done(engine, len(ids)), 40, "every signal done")

    # Assert
    events = order_events(kafka_settings, ids)
    fills = [f for f in records(kafka_settings, Topic.FILLS, "Fill") if f["signal_id"] in ids]
    for s in takers:
        cid = client_order_id(s["signal_id"], 0, 0)
        assert cid in events, f"no order events for taker {s['signal_id']}: {engine.runs}"
        venue_order = venue.query("BTCUSDT", cid)
        assert events[cid][0]["status"] == "pending_new" and events[cid][-1]["status"] in TERMINAL
        assert venue_order["type"] == "LIMIT" and venue_order["timeInForce"] == "IOC"
        assert Decimal(events[cid][-1]["filled_qty"]) == Decimal(venue_order["executedQty"])
        # hop stamps: the broker appended the signal (ms resolution) after it was emitted and before the
        # executor took it; the order went out after that, and its answer came back after it went out
        answered = events[cid][1]
        assert answered["ts_signal_ack"] is not None and answered["ts_sent"] is not None, answered
        assert s["ts_emit"] - 1_000_000 <= answered["ts_signal_ack"] <= answered["ts_in"] + 1_000_000
        assert answered["ts_in"] <= answered["ts_sent"] <= answered["ts_recv"]
    for s in makers:
        maker_events = [e for cid, evs in events.items() for e in evs if e["signal_id"] == s["signal_id"]]
        assert {e["order_type"] for e in maker_events} == {"LIMIT_MAKER"}
        assert "new" in {e["status"] for e in maker_events}
        assert maker_events[-1]["status"] in TERMINAL
    assert venue.open_orders() == []
    seqs = {cid: [e["seq"] for e in evs] for cid, evs in events.items()}
    assert all(s == sorted(set(s)) for s in seqs.values())
    after = venue.balances()
    delta: dict[str, Decimal] = defaultdict(Decimal)
    for f in {(f["symbol"], f["trade_id"]): f for f in fills}.values():
        base, quote = f["symbol"][:-4], f["symbol"][-4:]
        sign = 1 if f["side"] == "buy" else -1
        delta[base] += sign * Decimal(f["qty"])
        delta[quote] -= sign * Decimal(f["qty"]) * Decimal(f["price"])
        delta[f["fee_asset"]] -= Decimal(f["fee"])
    assert any(delta.values())
    for asset in set(delta) | {"BTC", "ETH", "USDT"}:
        assert after.get(asset, Decimal(0)) - before.get(asset, Decimal(0)) == delta[asset], asset


@pytest.mark.timeout(90)
@pytest.mark.parametrize("path", ["rest", "ws_api"])
def test_kill_switch_cancels_open_orders_and_denies_until_released(
    kafka_settings: KafkaSettings, executor_sim_url: str, market_bridge: MarketBridge, path: str
) -> None:
    # path ws_api: orders and the kill switch's cancels over the WebSocket API, their outcome by push
    key, secret = new_account(executor_sim_url)
    ws_url = executor_sim_url.replace("http://", "ws://") + "/ws-api/v3" if path == "ws_api" else ""
    settings = executor_settings(executor_sim_url, key, secret, passive_ttl_ms=60_000, ws_api_url=ws_url)
    venue = BinanceVenue(executor_sim_url, key, secret, 3000)

    with running_engine(settings, kafka_settings) as engine:
        wait_for(lambda: engine.recover_below, 20, "signals partitions assigned")
        resting = [signal(sym, side, size, urgency=0.0, expires_in_s=60)
                   for sym, size in (("BTCUSDT", "0.001"), ("ETHUSDT", "0.01")) for side in ("buy", "sell")]
        produce_signals(kafka_settings, resting)
        wait_for(lambda: len(venue.open_orders()) >= 2, 20, "resting passive orders")
        send_control(kafka_settings, settings.control_topic, TradingState.HALTED, "test halt", settings.control_key)
        wait_for(lambda: not venue.open_orders(), 20, "open orders canceled by the kill switch")
        refused = signal("BTCUSDT", "buy", "0.001", urgency=1.0)
        produce_signals(kafka_settings, [refused])
        wait_for(lambda: _has_status(kafka_settings, refused["signal_id"], "denied"), 20, "denied event while halted")
        send_control(kafka_settings, settings.control_topic, TradingState.ACTIVE, "test release", settings.control_key)
        wait_for(lambda: engine.risk.state is TradingState.ACTIVE, 10, "release applied")
        allowed = signal("BTCUSDT", "buy", "0.001", urgency=1.0)
        produce_signals(kafka_settings, [allowed])
        wait_for(lambda: _has_status(kafka_settings, allowed["signal_id"], "new"), 20, "order accepted after release")

    denied = [e for evs in order_events(kafka_settings, {refused["signal_id"]}).values() for e in evs]
    assert [e["status"] for e in denied] == ["denied"] and "halted: test halt" in denied[0]["reason"]
    halted = [e for evs in order_events(kafka_settings, {s["signal_id"] for s in resting}).values() for e in evs]
    killed = [e for e in halted if e["status"] == "pending_cancel" and e["reason"] == "kill switch"]
    assert killed, "the kill switch canceled no resting order"
    for event in killed:
        final = [e for e in halted if e["client_order_id"] == event["client_order_id"]][-1]
        assert final["status"] in {"canceled", "filled"}  # filled: a fill raced the cancel
    assert venue.query("BTCUSDT", client_order_id(allowed["signal_id"], 0, 0))["status"] in {"FILLED", "EXPIRED"}


def _has_status(kafka: KafkaSettings, signal_id: str, status: str) -> bool:
    return any(e["status"] == status for evs in order_events(kafka, {signal_id}).values() for e in evs)


@pytest.mark.timeout(60)
def test_venue_rejection_is_rejected_with_code_and_message_without_retry(
    kafka_settings: KafkaSettings, executor_sim_url: str, market_bridge: MarketBridge
) -> None:
    key, secret = new_account(executor_sim_url, {"USDT": "1"})
    settings = executor_settings(executor_sim_url, key, secret)
    broke = signal("BTCUSDT", "buy", "0.001", urgency=1.0)

    with running_engine(settings, kafka_settings) as engine:
        wait_for(lambda: engine.recover_below, 20, "signals partitions assigned")
        produce_signals(kafka_settings, [broke])
        wait_for(lambda: _has_status(kafka_settings, broke["signal_id"], "rejected"), 20, "rejected event")
        time.sleep(1.0)  # a retry storm would show up here
        assert all(r.done for r in engine.runs.values())

    events = [e for evs in order_events(kafka_settings, {broke["signal_id"]}).values() for e in evs]
    assert [e["status"] for e in events] == ["pending_new", "rejected"]
    assert events[-1]["error_code"] == -2010 and "insufficient balance" in events[-1]["reason"]


@pytest.mark.timeout(60)
def test_malformed_and_stale_signals_go_to_dlq_and_are_counted(
    kafka_settings: KafkaSettings, executor_sim_url: str, market_bridge: MarketBridge
) -> None:
    key, secret = new_account(executor_sim_url)
    settings = executor_settings(executor_sim_url, key, secret, max_signal_age_ms=1000)
    stale = signal("BTCUSDT", "buy", "0.001", age_s=30)
    expired = signal("BTCUSDT", "buy", "0.001", expires_in_s=-1)
    negative = signal("BTCUSDT", "buy", "-1")
    junk = b"not avro at all " + stale["signal_id"].encode()

    with running_engine(settings, kafka_settings) as engine:
        wait_for(lambda: engine.recover_below, 20, "signals partitions assigned")
        produce_signals(kafka_settings, [stale, expired, negative])
        produce(kafka_settings, Topic.SIGNALS.value, [(b"binance:BTCUSDT", junk)])
        wait_for(lambda: sum(engine.metrics.dlq.labels(k)._value.get() for k in ("stale", "malformed")) >= 4,
                 20, "four dead letters counted")

    letters = records(kafka_settings, Topic.DLQ, "DeadLetter")
    ours = [d for d in letters if d["raw"] == junk or any(s["signal_id"].encode() in d["raw"] for s in (stale, expired, negative))]
    assert len(ours) >= 4 and all(d["stage"] == "executor" and d["source_topic"] == "signals" for d in ours)
    assert {d["error"].split(":")[0] for d in ours} == {"malformed", "stale"}
    assert order_events(kafka_settings, {stale["signal_id"], expired["signal_id"], negative["signal_id"]}) == {}


@pytest.mark.timeout(60)
def test_unknown_outcome_is_settled_by_query_never_resent(
    kafka_settings: KafkaSettings, executor_sim_url: str, market_bridge: MarketBridge
) -> None:
    key, secret = new_account(executor_sim_url)
    settings = executor_settings(executor_sim_url, key, secret)
    venue = BinanceVenue(executor_sim_url, key, secret, 3000)
    s = signal("BTCUSDT", "buy", "0.001", urgency=1.0)

    with running_engine(settings, kafka_settings) as engine:
        wait_for(lambda: engine.recover_below, 20, "signals partitions assigned")
        requests.post(f"{executor_sim_url}/_sim/faults",
                      json={"rest_error": {"count": 1, "path": "/api/v3/order", "method": "POST", "after_execution": True}},
                      timeout=5).raise_for_status()
        produce_signals(kafka_settings, [s])
        wait_for(lambda: _has_status(kafka_settings, s["signal_id"], "filled")
                 or _has_status(kafka_settings, s["signal_id"], "expired"), 20, "settled order")

    events = [e for evs in order_events(kafka_settings, {s["signal_id"]}).values() for e in evs]
    first = [e for e in events if e["client_order_id"] == client_order_id(s["signal_id"], 0, 0)]
    assert [e["status"] for e in first][:3] == ["pending_new", "unknown", "new"]
    assert first[-1]["status"] in TERMINAL
    cids = {e["client_order_id"] for e in events if e["status"] == "new"}  # the ones the venue took
    venue_ids = {str(venue.query("BTCUSDT", cid)["orderId"]) for cid in cids}
    traded = {str(t["orderId"]) for t in venue.my_trades("BTCUSDT")}
    assert traded <= venue_ids  # every execution belongs to the one order per client id the venue reports


@pytest.mark.timeout(60)
def test_429_pauses_as_long_as_retry_after_says(
    kafka_settings: KafkaSettings, executor_sim_url: str, market_bridge: MarketBridge
) -> None:
    key, secret = new_account(executor_sim_url)
    settings = executor_settings(executor_sim_url, key, secret)
    s = signal("BTCUSDT", "buy", "0.001", urgency=1.0)

    with running_engine(settings, kafka_settings) as engine:
        wait_for(lambda: engine.recover_below, 20, "signals partitions assigned")
        # a 4 s storm: the order's first POST lands in it even on a loaded machine (a 1 s storm was once over
        # before it); Retry-After 5 s outlasts the storm, so the one retry is accepted
        requests.post(f"{executor_sim_url}/_sim/faults", json={"http_429": {"seconds": 4.0, "retry_after_s": 5}},
                      timeout=5).raise_for_status()
        started = time.monotonic()
        produce_signals(kafka_settings, [s])
        wait_for(lambda: _has_status(kafka_settings, s["signal_id"], "new"), 20, "accepted after the pause")
        elapsed = time.monotonic() - started

    events = [e for evs in order_events(kafka_settings, {s["signal_id"]}).values() for e in evs]
    limited = [e for e in events if e["status"] == "rejected"]
    assert len(limited) == 1 and limited[0]["error_code"] == -1003, events
    assert elapsed >= 5.0
