"""The executor on the venue's push channels (WebSocket API orders, user-data stream) over real sockets.

References are the simulator's own counters (which REST and WebSocket API requests reached it), its
order and trade lists (``myTrades`` read after the run) and the records on the real broker.
"""

from __future__ import annotations

import time
from collections import Counter
from decimal import Decimal

import pytest
import requests

from executor.venue import BinanceVenue
from infra.settings import KafkaSettings
from schemas.topics import Topic
from tests.integration.executor.harness import (
    MarketBridge,
    executor_settings,
    new_account,
    order_events,
    produce_signals,
    records,
    running_engine,
    signal,
    venue_orders_of,
)
from tests.polling import wait_for

pytestmark = [pytest.mark.integration]


def _ws_url(sim_url: str) -> str:
    return sim_url.replace("http://", "ws://") + "/ws-api/v3"


def _sim_counts(sim_url: str) -> Counter[tuple[str, str]]:
    """Requests the simulator answered: REST ``(path, method)`` and WebSocket API ``("ws", method)``."""
    out: Counter[tuple[str, str]] = Counter()
    for line in requests.get(f"{sim_url}/metrics", timeout=5).text.splitlines():
        if line.startswith("sim_rest_requests_total{"):
            labels = dict(part.split("=") for part in line[line.index("{") + 1:line.index("}")].split(","))
            out[(labels["path"].strip('"'), labels["method"].strip('"'))] += int(float(line.rsplit(" ", 1)[1]))
        elif line.startswith("sim_ws_api_requests_total{"):
            labels = dict(part.split("=") for part in line[line.index("{") + 1:line.index("}")].split(","))
            out[("ws", labels["method"].strip('"'))] += int(float(line.rsplit(" ", 1)[1]))
    return out


def _done(engine, n: int) -> bool:
    return engine.metrics.signals.labels("done")._value.get() >= n


def _fills_once(kafka: KafkaSettings, venue: BinanceVenue, signals: list[dict]) -> list[dict]:
    """The account's venue trades of ``signals`` each published exactly once as a Fill; returns the Fills."""
    ids = {s["signal_id"] for s in signals}
    fills = [f for f in records(kafka, Topic.FILLS, "Fill") if f["signal_id"] in ids]
    published = Counter((f["symbol"], f["trade_id"]) for f in fills)
    venue_trades = {(o["symbol"], int(t["id"])): t for s in signals for o in venue_orders_of(venue, s)
                    for t in venue.my_trades(o["symbol"], str(o["orderId"]))}
    assert set(published) == set(venue_trades), (published, venue_trades)
    assert all(n == 1 for n in published.values()), published
    for f in fills:
        trade = venue_trades[(f["symbol"], f["trade_id"])]
        assert (Decimal(f["price"]), Decimal(f["qty"])) == (Decimal(trade["price"]), Decimal(trade["qty"]))
    return fills


@pytest.mark.timeout(120)
def test_orders_go_over_the_ws_api_and_fills_arrive_only_by_push(
    kafka_settings: KafkaSettings, executor_sim_url: str, market_bridge: MarketBridge
) -> None:
    # Arrange
    key, secret = new_account(executor_sim_url)
    settings = executor_settings(executor_sim_url, key, secret, ws_api_url=_ws_url(executor_sim_url))
    venue = BinanceVenue(executor_sim_url, key, secret, 3000)

    # Act
    with running_engine(settings, kafka_settings) as engine:
        wait_for(lambda: engine.recover_below, 20, "signals partitions assigned")
        wait_for(lambda: engine.trader.push_up, 10, "WebSocket API session subscribed")
        # signals are made once the engine is up: their age and expiry start now (a slow start under load
        # made them stale before the executor began them)
        takers = [signal(sym, "buy", "0.002" if sym == "BTCUSDT" else "0.05", urgency=1.0)
                  for sym in ("BTCUSDT", "ETHUSDT") for _ in range(3)]
        makers = [signal("ETHUSDT", "sell", "0.05", urgency=0.0, expires_in_s=4)]
        before = _sim_counts(executor_sim_url)
        produce_signals(kafka_settings, takers + makers)
        wait_for(lambda: _done(engine, len(takers + makers)), 40, "every signal done")
        during = _sim_counts(executor_sim_url) - before
        sessions = engine.metrics.push_sessions._value.get()

    # Assert: every order over the WebSocket API, no REST order call, no polling, no myTrades: the
    # order states and every fill came by push
    assert during[("ws", "order.place")] >= len(takers + makers)
    # (periodic reconciliation and the clock sync read /account, /openOrders and /time; never an order)
    rest_trading = {k: v for k, v in during.items() if k[0] in ("/api/v3/order", "/api/v3/myTrades")}
    assert rest_trading == {}, rest_trading
    assert sessions == 1
    fills = _fills_once(kafka_settings, venue, takers + makers)
    assert fills and all(f["account"] == key for f in fills)
    events = order_events(kafka_settings, {s["signal_id"] for s in takers})
    assert all(evs[0]["status"] == "pending_new" and evs[-1]["status"] in {"filled", "expired", "canceled"}
               for evs in events.values())
    maker_fills = [f for f in fills if f["signal_id"] == makers[0]["signal_id"]]
    assert all(f["liquidity"] == "maker" for f in maker_fills)  # a resting order's fills: pushed, never polled
    assert maker_fills or during[("ws", "order.cancel")] >= 1  # unfilled, it was canceled over the session
    assert venue.open_orders() == []


@pytest.mark.timeout(120)
def test_session_dropped_mid_order_and_while_resting_every_fill_is_recorded_once(
    kafka_settings: KafkaSettings, executor_sim_url: str, market_bridge: MarketBridge
) -> None:
    # Arrange: a long reconnect pause, so a fill happens while the session is down
    key, secret = new_account(executor_sim_url)
    other_key, other_secret = new_account(executor_sim_url)
    settings = executor_settings(executor_sim_url, key, secret, ws_api_url=_ws_url(executor_sim_url),
                                 ws_reconnect_base_ms=1500, ws_reconnect_cap_ms=1500, passive_ttl_ms=20_000,
                                 passive_window_ms=20_000, reprice_ticks=1_000_000)  # no repricing: one order a signal
    venue = BinanceVenue(executor_sim_url, key, secret, 3000)
    other = BinanceVenue(executor_sim_url, other_key, other_secret, 3000)

    with running_engine(settings, kafka_settings) as engine:
        wait_for(lambda: engine.recover_below, 20, "signals partitions assigned")
        wait_for(lambda: engine.trader.push_up, 10, "WebSocket API session subscribed")
        # signals are made once the engine is up: their age and expiry start now (a slow start under load
        # made them stale before the executor began them)
        lost = [signal("BTCUSDT", "buy", "0.002", urgency=1.0)]
        maker = [signal("BTCUSDT", "buy", "0.003", urgency=0.0, expires_in_s=20)]
        after = [signal("ETHUSDT", "buy", "0.05", urgency=1.0) for _ in range(2)]
        # Act 1: the venue executes an IOC and drops the session before answering it
        requests.post(f"{executor_sim_url}/_sim/faults",
                      json={"answer_lost": {"path": "/api/v3/order", "method": "POST"}}, timeout=5).raise_for_status()
        try:
            produce_signals(kafka_settings, lost)
            wait_for(lambda: _done(engine, 1), 30, "the signal whose answer was lost done")
        finally:
            requests.delete(f"{executor_sim_url}/_sim/faults", timeout=5)
        wait_for(lambda: engine.metrics.push_sessions._value.get() >= 2, 10, "session back")
        # Act 2: a passive order rests (the venue's background flow paused, so only the test trades with
        # it); the session drops; another account's market sell fills it meanwhile
        requests.post(f"{executor_sim_url}/_sim/flow", json={"paused": True}, timeout=5).raise_for_status()
        try:
            produce_signals(kafka_settings, maker)
            wait_for(lambda: any(o.command.signal_id == maker[0]["signal_id"] and o.is_open
                                 for o in engine.trader.live.values()), 15, "maker resting")
            price = next(o.command.price for o in engine.trader.live.values()
                         if o.command.signal_id == maker[0]["signal_id"])
            requests.post(f"{executor_sim_url}/_sim/ws_api/drop", timeout=5).raise_for_status()
            # sweeps every bid down to the maker's price, the maker included
            other.exchange.privatePostOrder({"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT",
                                             "timeInForce": "IOC", "quantity": "9", "price": str(price)})
        finally:
            requests.post(f"{executor_sim_url}/_sim/flow", json={"paused": False}, timeout=5)
        wait_for(lambda: _done(engine, 2), 30, "maker filled while the session was down, and done")
        wait_for(lambda: engine.trader.push_up, 10, "session back again")
        produce_signals(kafka_settings, after)
        wait_for(lambda: _done(engine, 4), 30, "signals after the reconnects done")
        sessions = engine.metrics.push_sessions._value.get()

    # Assert: one venue order per signal (no resend), every venue trade published exactly once
    for s in lost + maker:
        assert len(venue_orders_of(venue, s)) == 1
    maker_order = venue_orders_of(venue, maker[0])[0]
    assert maker_order["status"] == "FILLED"
    _fills_once(kafka_settings, venue, lost + maker + after)
    assert sessions >= 3
    lost_events = order_events(kafka_settings, {lost[0]["signal_id"]})
    statuses = [e["status"] for evs in lost_events.values() for e in evs]
    assert "unknown" in statuses and statuses[-1] in {"filled", "expired"}


@pytest.mark.timeout(90)
def test_an_execution_report_for_an_order_we_did_not_place_is_reconciled_and_reported(
    kafka_settings: KafkaSettings, executor_sim_url: str, market_bridge: MarketBridge
) -> None:
    # Arrange: periodic reconciliation far away: only the push can make it run now
    key, secret = new_account(executor_sim_url)
    settings = executor_settings(executor_sim_url, key, secret, ws_api_url=_ws_url(executor_sim_url),
                                 reconcile_interval_ms=600_000, reconcile_max_diff_quote=Decimal(1_000_000))
    venue = BinanceVenue(executor_sim_url, key, secret, 3000)

    with running_engine(settings, kafka_settings) as engine:
        wait_for(lambda: engine.recover_below, 20, "signals partitions assigned")
        wait_for(lambda: engine.trader.push_up and engine.last_check, 10, "session up, first check done")
        # Act: the same account trades behind the executor's back
        manual = venue.exchange.privatePostOrder({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET",
                                                  "quantity": "0.01", "newClientOrderId": "manual-push-1"})
        # Assert: reconciled at once (not 10 minutes later) and reported on executor.health
        wait_for(lambda: engine.last_check.get("diff", {}).get("BTC"), 10, "the trade found by reconciliation")

        def health() -> list[dict]:
            return [e for e in records(kafka_settings, Topic.EXECUTOR_HEALTH, "ExecutorEvent") if e["account"] == key]
        wait_for(health, 10, "the difference published on executor.health")
        foreign = engine.metrics.push_frames.labels("foreign")._value.get()
    fee = sum(Decimal(f["commission"]) for f in manual["fills"] if f["commissionAsset"] == "BTC")
    assert Decimal(engine.last_check["diff"]["BTC"]) == Decimal(manual["executedQty"]) - fee
    assert foreign >= 1
    health = health()
    assert [e["kind"] for e in health] == ["reconciliation_diff"]
    assert {d["asset"] for d in health[0]["balance_diffs"]} >= {"BTC", "USDT"}


@pytest.mark.timeout(90)
def test_malformed_and_unknown_events_go_to_dlq_and_the_session_stays_up(
    kafka_settings: KafkaSettings, executor_sim_url: str, market_bridge: MarketBridge
) -> None:
    # Arrange
    key, secret = new_account(executor_sim_url)
    settings = executor_settings(executor_sim_url, key, secret, ws_api_url=_ws_url(executor_sim_url))
    venue = BinanceVenue(executor_sim_url, key, secret, 3000)
    frames = [
        "{not json",
        '{"subscriptionId": 0, "event": {"e": "listStatus", "E": 1}}',
        ('{"subscriptionId": 0, "event": {"e": "executionReport", "E": 1, "s": "BTCUSDT", "c": "x", "x": "TRADE",'
         ' "X": "FILLED", "i": 1, "z": "abc"}}'),
        f'{{"subscriptionId": 0, "event": {{"e": "executionReport", "marker": "{key}"}}}}',
    ]

    with running_engine(settings, kafka_settings) as engine:
        wait_for(lambda: engine.recover_below, 20, "signals partitions assigned")
        wait_for(lambda: engine.trader.push_up, 10, "WebSocket API session subscribed")
        takers = [signal("BTCUSDT", "buy", "0.002", urgency=1.0) for _ in range(2)]  # made now: see above
        # Act
        for frame in frames:
            sent = requests.post(f"{executor_sim_url}/_sim/ws_api/inject", json={"api_key": key, "frame": frame},
                                 timeout=5).json()
            assert sent == {"sessions": 1}
        wait_for(lambda: engine.metrics.push_frames.labels("malformed")._value.get() >= len(frames), 10,
                 "every bad frame read")
        produce_signals(kafka_settings, takers)
        wait_for(lambda: _done(engine, len(takers)), 30, "signals after the bad frames done")
        sessions = engine.metrics.push_sessions._value.get()

    # Assert: each frame dead-lettered with its bytes and the reason; the same session kept trading
    letters = [d for d in records(kafka_settings, Topic.DLQ, "DeadLetter")
               if d["stage"] == "executor" and d["raw"].decode("utf-8", "replace") in frames]
    assert sorted(d["raw"].decode() for d in letters) == sorted(frames)
    assert all(d["error"] and d["source_topic"] == settings.ws_api_url for d in letters)
    assert sessions == 1
    _fills_once(kafka_settings, venue, takers)


@pytest.mark.timeout(120)
def test_several_orders_in_flight_no_instrument_waits_for_a_slow_answer_on_another(
    kafka_settings: KafkaSettings, executor_sim_url: str, market_bridge: MarketBridge
) -> None:
    # Arrange: the venue holds the next BTCUSDT order 4 s before executing it (within the answer timeout)
    key, secret = new_account(executor_sim_url)
    settings = executor_settings(executor_sim_url, key, secret, ws_api_url=_ws_url(executor_sim_url),
                                 request_timeout_ms=8000, recv_window_ms=10_000)

    with running_engine(settings, kafka_settings) as engine:
        wait_for(lambda: engine.recover_below, 20, "signals partitions assigned")
        wait_for(lambda: engine.trader.push_up, 10, "WebSocket API session subscribed")
        # signals are made once the engine is up: their age and expiry start now (a slow start under load
        # made them stale before the executor began them)
        slow = signal("BTCUSDT", "buy", "0.002", urgency=1.0)
        fast = [signal("ETHUSDT", "buy", "0.05", urgency=1.0) for _ in range(3)]
        requests.post(f"{executor_sim_url}/_sim/faults", json={"late_execution": {"delay_s": 4.0}},
                      timeout=5).raise_for_status()
        try:
            # Act
            produce_signals(kafka_settings, [slow])
            wait_for(lambda: any(o.command.signal_id == slow["signal_id"] for o in engine.trader.live.values()), 10,
                     "the slow order sent")
            started = time.monotonic()
            produce_signals(kafka_settings, fast)
            wait_for(lambda: _done(engine, len(fast)), 10, "the other instrument's signals done")
            fast_done_s = time.monotonic() - started
            slow_still_open = any(o.command.signal_id == slow["signal_id"] for o in engine.trader.live.values())
            wait_for(lambda: _done(engine, len(fast) + 1), 20, "the slow signal done")
        finally:
            requests.delete(f"{executor_sim_url}/_sim/faults", timeout=5)

    # Assert: ETHUSDT finished while the BTCUSDT answer was still held by the venue
    assert slow_still_open and fast_done_s < 4.0, fast_done_s
    venue = BinanceVenue(executor_sim_url, key, secret, 3000)
    # the held IOC may execute in part once released (the book moved meanwhile): the rest goes in a next
    # attempt, never beyond the target
    slow_orders = venue_orders_of(venue, slow)
    assert slow_orders and sum(Decimal(o["executedQty"]) for o in slow_orders) <= Decimal(slow["target"]), slow_orders
    _fills_once(kafka_settings, venue, fast + [slow])


@pytest.mark.timeout(90)
def test_a_cancel_held_unanswered_on_a_live_session_is_settled_by_asking_the_venue(
    kafka_settings: KafkaSettings, executor_sim_url: str, market_bridge: MarketBridge
) -> None:
    # Arrange: the venue holds the next cancel 20 s without executing it; the answer timeout is 1 s
    key, secret = new_account(executor_sim_url)
    settings = executor_settings(executor_sim_url, key, secret, ws_api_url=_ws_url(executor_sim_url),
                                 request_timeout_ms=1000, passive_ttl_ms=60_000, passive_window_ms=60_000)
    venue = BinanceVenue(executor_sim_url, key, secret, 3000)

    with running_engine(settings, kafka_settings) as engine:
        wait_for(lambda: engine.recover_below, 20, "signals partitions assigned")
        wait_for(lambda: engine.trader.push_up, 10, "WebSocket API session subscribed")
        # signals are made once the engine is up: their age and expiry start now (a slow start under load
        # made them stale before the executor began them)
        maker = signal("BTCUSDT", "buy", "0.002", urgency=0.0, expires_in_s=4)
        requests.post(f"{executor_sim_url}/_sim/flow", json={"paused": True}, timeout=5).raise_for_status()
        requests.post(f"{executor_sim_url}/_sim/faults", timeout=5, json={"rest_error": {
            "mode": "timeout", "path": "/api/v3/order", "method": "DELETE", "after_execution": False,
            "delay_s": 20}}).raise_for_status()
        try:
            # Act: the signal expires, its cancel is held
            produce_signals(kafka_settings, [maker])
            started = time.monotonic()
            wait_for(lambda: _done(engine, 1), 15, "the expired signal done")
            took_s = time.monotonic() - started
        finally:
            requests.delete(f"{executor_sim_url}/_sim/faults", timeout=5)
            requests.post(f"{executor_sim_url}/_sim/flow", json={"paused": False}, timeout=5)

    # Assert: done long before the held answer, by asking the venue (the cancel proven not done,
    # then sent again); the venue canceled the one order
    assert took_s < 15
    orders = venue_orders_of(venue, maker)
    assert [o["status"] for o in orders] == ["CANCELED"]
    statuses = [e["status"] for evs in order_events(kafka_settings, {maker["signal_id"]}).values() for e in evs]
    assert statuses == ["pending_new", "new", "pending_cancel", "new", "pending_cancel", "canceled"], statuses
