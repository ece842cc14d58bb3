"""The executor's trading guarantees against the real broker and the simulated exchange over sockets (no mocks):
one run per signal id, unknown outcomes settled by the venue's clock, runs complete only with all
their Fills, and a signed, sticky kill switch."""

from __future__ import annotations

import os
import signal as os_signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
import requests
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from executor.commands import OrderType, Side, TimeInForce
from executor.control import CONTROL_KEY, control_message, send_control
from executor.ids import client_order_id
from executor.order import OrderStatus, OrderTrigger
from executor.risk import TradingState
from executor.trader import SignalRun
from executor.venue import BinanceVenue
from infra.broker import free_port, private_broker
from infra.processes import stop_process
from infra.settings import ExecutorSettings, KafkaSettings, environ_without_settings
from schemas.topics import Topic
from tests.integration.executor.harness import (
    SERDE,
    MarketBridge,
    executor_settings,
    new_account,
    order_events,
    produce,
    produce_signals,
    records,
    running_engine,
    set_up_engine,
    signal,
    sim_order_posts,
    start_executor_process,
    venue_orders_of,
)
from tests.polling import wait_for

pytestmark = [pytest.mark.integration]
RESTING = ("new", "partially_filled")


def _fault(sim_url: str, body: dict) -> None:
    requests.post(f"{sim_url}/_sim/faults", json=body, timeout=5).raise_for_status()


@contextmanager
def _flow_paused(sim_url: str) -> Iterator[None]:
    """No background flow meanwhile: the book stands still, so a resting order neither fills nor crosses."""
    requests.post(f"{sim_url}/_sim/flow", json={"paused": True}, timeout=5).raise_for_status()
    try:
        yield
    finally:
        requests.post(f"{sim_url}/_sim/flow", json={"paused": False}, timeout=5).raise_for_status()


def _counter(engine, name: str, label: str | None = None) -> float:
    metric = getattr(engine.metrics, name)
    return (metric.labels(label) if label is not None else metric)._value.get()


def _done(engine, n: int = 1) -> bool:
    return _counter(engine, "signals", "done") >= n  # (a done run leaves engine.runs once committed)


def _fills_of(kafka: KafkaSettings, signal_id: str) -> list[dict]:
    return [f for f in records(kafka, Topic.FILLS, "Fill") if f["signal_id"] == signal_id]


# ---- 1. at most once per signal id ---------------------------------------------------------------


@pytest.mark.timeout(60)
def test_same_signal_at_a_second_offset_while_the_first_rests_keeps_one_venue_order(
    kafka_settings: KafkaSettings, executor_sim_url: str, market_bridge: MarketBridge
) -> None:
    # Arrange
    key, secret = new_account(executor_sim_url)
    settings = executor_settings(executor_sim_url, key, secret, passive_ttl_ms=60_000, passive_window_ms=60_000,
                                 reprice_ticks=1_000_000)  # the order rests where it is
    venue = BinanceVenue(executor_sim_url, key, secret, 3000)
    resting = signal("BTCUSDT", "buy", "0.5", urgency=0.0, expires_in_s=40)  # large: a partial fill still rests
    cid = client_order_id(resting["signal_id"], 0, 0)

    with running_engine(settings, kafka_settings) as engine, _flow_paused(executor_sim_url):
        wait_for(lambda: engine.recover_below, 20, "signals partitions assigned")
        produce_signals(kafka_settings, [resting])
        wait_for(lambda: len(venue.open_orders()) == 1, 20,
                 f"the first run's order rests: {order_events(kafka_settings, {resting['signal_id']})}")

        # Act: the same record again, at a new offset
        produce_signals(kafka_settings, [resting])
        wait_for(lambda: _counter(engine, "signals", "duplicate") == 1, 20, "duplicate counted")
        time.sleep(0.5)  # a second run would act here

        # Assert
        assert cid in engine.trader.live and engine.trader.live[cid].status.value in RESTING, (
            venue.open_orders(), order_events(kafka_settings, {resting["signal_id"]}), engine.runs)
        assert [o["clientOrderId"] for o in venue.open_orders()] == [cid]
        assert len(venue_orders_of(venue, resting)) == 1
        runs = [r for r in engine.runs.values() if r.signal_id == resting["signal_id"]]
        assert len(runs) == 1 and not runs[0].done
    events = order_events(kafka_settings, {resting["signal_id"]})
    assert list(events) == [cid]  # one client order id: attempt 0 (a post-only retry keeps the id)
    assert not [e for e in events[cid] if "Duplicate order" in (e["reason"] or "")]
    assert events[cid][-1]["status"] in RESTING


def _metric(port: str, name: str, labels: str = "") -> float:
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    for line in text.splitlines():
        if line.startswith(f"{name}{{{labels}}} ") or (not labels and line.startswith(f"{name} ")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.timeout(120)
def test_duplicates_after_a_kill_9_are_dropped_and_start_up_positions_are_the_accounts_fills(
    kafka_settings: KafkaSettings, executor_sim_url: str, market_bridge: MarketBridge, tmp_path: Path
) -> None:
    # Arrange: a taker signal that finishes (offset committed) and a maker signal that rests
    key, secret = new_account(executor_sim_url)
    venue = BinanceVenue(executor_sim_url, key, secret, 3000)
    before = venue.balances()
    tag = os.urandom(4).hex()
    port = str(free_port())
    env = environ_without_settings() | {
        "TICKPIPE_KAFKA__BOOTSTRAP": kafka_settings.bootstrap,
        "TICKPIPE_EXECUTOR__GROUP_ID": f"dup-{tag}",
        "TICKPIPE_EXECUTOR__CONTROL_TOPIC": f"executor.control.{tag}",
        "TICKPIPE_EXECUTOR__REST_URL": executor_sim_url,
        "TICKPIPE_EXECUTOR__API_KEY": key,
        "TICKPIPE_EXECUTOR__ACCOUNT": key,
        "TICKPIPE_EXECUTOR__API_SECRET": secret,
        "TICKPIPE_EXECUTOR__METRICS_PORT": port,
        "TICKPIPE_EXECUTOR__SYMBOLS": "BTCUSDT,ETHUSDT",
        "TICKPIPE_EXECUTOR__MAX_SIGNAL_AGE_MS": "60000",
        "TICKPIPE_EXECUTOR__PASSIVE_TTL_MS": "60000",
        "TICKPIPE_EXECUTOR__PASSIVE_WINDOW_MS": "60000",
        "TICKPIPE_EXECUTOR__REPRICE_TICKS": "1000000",
        "TICKPIPE_EXECUTOR__RECV_WINDOW_MS": "2000",
        "TICKPIPE_LOG_LEVEL": "INFO",
    }
    taker = signal("BTCUSDT", "buy", "0.001", urgency=1.0, expires_in_s=50)
    maker = signal("ETHUSDT", "buy", "20", urgency=0.0, expires_in_s=50)  # 40x the flow's mean order: still rests partly filled
    log = tmp_path / "executor.log"
    proc = start_executor_process(env, log)
    try:
        health = f"http://127.0.0.1:{port}/health"
        # up, and its signals partitions assigned: a new group starts at the end offsets it finds then
        wait_for(lambda: requests.get(health, timeout=2).json().get("signals_partitions"), 30, "executor up",
                 tolerate=(requests.RequestException,))
        produce_signals(kafka_settings, [taker, maker])
        seen: dict = {}

        def taker_done_maker_resting() -> bool:
            seen.update(open=venue.open_orders(), taker=venue_orders_of(venue, taker), maker=venue_orders_of(venue, maker))
            return bool(seen["open"] and seen["taker"] and seen["taker"][-1]["status"] in ("FILLED", "EXPIRED"))

        try:
            wait_for(taker_done_maker_resting, 40, "taker done, maker resting")
        except AssertionError as exc:  # what the venue held then, and what the executor said
            raise AssertionError(f"{exc}: venue {seen}; executor log tail: {log.read_text()[-4000:]}") from None
        wait_for(lambda: requests.get(health, timeout=2).json()["inflight"] == 1, 10, "taker run finished")
        time.sleep(0.3)  # its offset committed (every 50 ms)
        taker_orders = len(venue_orders_of(venue, taker))

        # Act: kill -9, the same two signals again, restart; meanwhile a Fill of another account, a copy of one of
        # ours and one of ours the venue never saw join `fills` (start-up positions are that account's Fills)
        proc.send_signal(os_signal.SIGKILL)
        proc.wait(10)
        produce_signals(kafka_settings, [taker, maker])
        ours = [f for f in records(kafka_settings, Topic.FILLS, "Fill") if f["account"] == key and f["symbol"] == "BTCUSDT"]
        assert ours, "the taker's Fills carry the executor's account"
        produce(kafka_settings, Topic.FILLS.value, [(b"binance:BTCUSDT", SERDE.encode("Fill", f)) for f in (
            {**ours[0], "account": "another-account", "trade_id": 10**15, "qty": "3"},
            ours[0],
            {**ours[0], "trade_id": 10**15 + 1, "side": "sell", "qty": "0.0004", "fee": "0"},
        )])
        proc = start_executor_process(env, log)
        wait_for(lambda: requests.get(health, timeout=2).json().get("ok"), 30, "executor up again",
                 tolerate=(requests.RequestException,))
        start_position = Decimal(requests.get(health, timeout=2).json()["positions"]["BTCUSDT"])
        wait_for(lambda: _metric(port, "executor_signals_total", 'stage="duplicate"') == 2, 40, "both duplicates counted",
                 tolerate=(requests.RequestException,))
        # the maker's order was canceled by start-up reconciliation; its replayed run places the next attempt
        # once the previous process's requests can no longer execute (recvWindow + 1 s); it rests or fills
        wait_for(lambda: len(venue.open_orders()) == 1 or requests.get(health, timeout=2).json()["inflight"] == 0,
                 15, "the maker's replayed run rests again or is done")
        resting = []
        for _ in range(10):  # a second run would act here: never two resting orders, never two in flight
            resting.append(len(venue.open_orders()))
            assert requests.get(health, timeout=2).json()["inflight"] <= 1
            time.sleep(0.1)

        # Assert: no new order for the finished taker, one maker order at a time, no duplicate-id rejection
        assert len(venue_orders_of(venue, taker)) == taker_orders
        assert max(resting) <= 1, resting
        maker_filled = sum(Decimal(o["executedQty"]) for o in venue_orders_of(venue, maker))
        assert maker_filled <= Decimal(maker["target"])  # one run's worth, never two
        # start-up positions: this account's Fills, each trade once, net of base fees; not the other account's
        mine = {f["trade_id"]: f for f in records(kafka_settings, Topic.FILLS, "Fill")
                if f["account"] == key and f["symbol"] == "BTCUSDT"}
        assert start_position == sum(
            (Decimal(f["qty"]) if f["side"] == "buy" else -Decimal(f["qty"]))
            - (Decimal(f["fee"]) if f["fee_asset"] == "BTC" else 0) for f in mine.values())
        assert start_position == venue.balances()["BTC"] - before["BTC"] - Decimal("0.0004")
    finally:
        stop_process(proc, timeout_s=20)
    events = [e for evs in order_events(kafka_settings, {taker["signal_id"], maker["signal_id"]}).values() for e in evs]
    assert not [e for e in events if "Duplicate order" in (e["reason"] or "")], "a second run reused a live client order id"


# ---- 2. unknown outcomes resolved by the venue's clock ---------------------------------------------


@pytest.mark.parametrize("fault", [
    {"late_execution": {"delay_s": 2.0}},  # held past the client's timeout, then executed
    {"answer_lost": {}},  # executed, connection dropped without an answer
])
@pytest.mark.timeout(60)
def test_ioc_under_a_lost_or_late_answer_executes_exactly_once(
    kafka_settings: KafkaSettings, executor_sim_url: str, market_bridge: MarketBridge, fault: dict
) -> None:
    # Arrange: the client gives up after 1 s; the venue may execute the request until timestamp + 4 s
    key, secret = new_account(executor_sim_url)
    settings = executor_settings(executor_sim_url, key, secret, request_timeout_ms=1000, recv_window_ms=4000)
    venue = BinanceVenue(executor_sim_url, key, secret, 3000)
    s = signal("BTCUSDT", "buy", "0.001", urgency=1.0)

    with running_engine(settings, kafka_settings) as engine:
        wait_for(lambda: engine.recover_below, 20, "signals partitions assigned")
        posts_before = sim_order_posts(executor_sim_url)
        _fault(executor_sim_url, fault)

        # Act
        produce_signals(kafka_settings, [s])
        wait_for(lambda: _done(engine), 30, "signal done")
        time.sleep(2.5)  # anything still held inside the venue has executed (or been dropped) by now

    # Assert: every POST that reached the venue is one venue order of the signal, nothing executed twice
    orders = venue_orders_of(venue, s)
    posts = sim_order_posts(executor_sim_url) - posts_before
    assert posts == len(orders) >= 1, (posts, orders)
    order_ids = {str(o["orderId"]) for o in orders}
    trades = [t for t in venue.my_trades("BTCUSDT") if str(t["orderId"]) in order_ids]
    assert {str(t["orderId"]) for t in venue.my_trades("BTCUSDT")} <= order_ids
    executed = sum(Decimal(o["executedQty"]) for o in orders)
    assert Decimal(0) < executed <= Decimal(s["target"])
    assert sum(Decimal(t["qty"]) for t in trades) == executed
    first = [e["status"] for e in order_events(kafka_settings, {s["signal_id"]})[client_order_id(s["signal_id"], 0, 0)]]
    assert first[:3] == ["pending_new", "unknown", "new"], first


@pytest.mark.timeout(60)
def test_a_request_held_past_its_recv_window_counts_as_never_placed_only_after_it_and_is_retried_once(
    kafka_settings: KafkaSettings, executor_sim_url: str, market_bridge: MarketBridge
) -> None:
    # Arrange: the venue holds the POST 3.5 s, longer than its 2 s recvWindow: it will drop it (-1021)
    key, secret = new_account(executor_sim_url)
    settings = executor_settings(executor_sim_url, key, secret, request_timeout_ms=1000, recv_window_ms=2000)
    venue = BinanceVenue(executor_sim_url, key, secret, 3000)
    s = signal("BTCUSDT", "buy", "0.001", urgency=1.0)
    cid = client_order_id(s["signal_id"], 0, 0)

    with running_engine(settings, kafka_settings) as engine:
        wait_for(lambda: engine.recover_below, 20, "signals partitions assigned")
        posts_before = sim_order_posts(executor_sim_url)
        _fault(executor_sim_url, {"late_execution": {"delay_s": 3.5}})

        # Act
        produce_signals(kafka_settings, [s])
        wait_for(lambda: _done(engine), 30, "signal done")
        time.sleep(3.0)  # the held request has reached the venue's recvWindow check by now

    # Assert: "not found" was accepted only after the recvWindow, the retry under the same id is the
    # one execution, and the held request was dropped (two POSTs, one venue order)
    events = order_events(kafka_settings, {s["signal_id"]})[cid]
    statuses = [e["status"] for e in events]
    assert statuses[:5] == ["pending_new", "unknown", "rejected", "pending_new", "new"], statuses
    assert "recvWindow" in events[2]["reason"]
    assert events[2]["ts_emit"] - events[0]["ts_emit"] >= settings.recv_window_ms * 1_000_000
    orders = venue_orders_of(venue, s)
    assert [o["clientOrderId"] for o in orders][:1] == [cid]
    assert sim_order_posts(executor_sim_url) - posts_before == len(orders) + 1
    order_ids = {str(o["orderId"]) for o in orders}
    assert {str(t["orderId"]) for t in venue.my_trades("BTCUSDT")} <= order_ids
    assert Decimal(0) < sum(Decimal(o["executedQty"]) for o in orders) <= Decimal(s["target"])


# ---- 4. a run ends only when its fills are complete ------------------------------------------------


@pytest.mark.timeout(60)
def test_lagging_my_trades_holds_the_commit_until_every_fill_is_published_once(
    kafka_settings: KafkaSettings, executor_sim_url: str, market_bridge: MarketBridge
) -> None:
    # Arrange: the order's answer is lost (its fills come from myTrades), and myTrades lags by 3 s
    key, secret = new_account(executor_sim_url)
    settings = executor_settings(executor_sim_url, key, secret, request_timeout_ms=1000)
    venue = BinanceVenue(executor_sim_url, key, secret, 3000)
    s = signal("BTCUSDT", "buy", "0.001", urgency=1.0)
    watcher = Consumer({"bootstrap.servers": kafka_settings.bootstrap, "group.id": settings.group_id,
                        "enable.auto.commit": False})
    observations = 0

    with running_engine(settings, kafka_settings) as engine:
        wait_for(lambda: engine.recover_below, 20, "signals partitions assigned")
        _fault(executor_sim_url, {"answer_lost": {}, "mytrades_lag": {"seconds": 15, "lag_s": 3}})

        # Act
        produce_signals(kafka_settings, [s])
        run = wait_for(lambda: next((r for r in engine.runs.values() if r.signal_id == s["signal_id"]), None), 20,
                       "signal taken")
        tp = TopicPartition(Topic.SIGNALS.value, run.partition)
        started = time.monotonic()

        # Assert: whenever Kafka shows the signal committed, its Fills are complete
        def committed_past() -> bool:
            nonlocal observations
            observations += 1
            return watcher.committed([tp], timeout=5)[0].offset > run.offset

        wait_for(committed_past, 30, "signal committed", interval_s=0.1)
        waited = time.monotonic() - started
        fills = _fills_of(kafka_settings, s["signal_id"])
        orders = venue_orders_of(venue, s)
    watcher.close()
    executed = sum(Decimal(o["executedQty"]) for o in orders)
    assert executed > 0
    assert sum(Decimal(f["qty"]) for f in fills) == executed
    assert len({f["trade_id"] for f in fills}) == len(fills)  # every Fill once
    assert waited >= 2.0 and observations > 5  # the commit really waited for the lagging trades


# ---- 7. signed, sticky kill switch ------------------------------------------------------------------


def _cli(kafka: KafkaSettings, settings: ExecutorSettings, *args: str) -> None:
    env = environ_without_settings() | {
        "TICKPIPE_KAFKA__BOOTSTRAP": kafka.bootstrap,
        "TICKPIPE_EXECUTOR__CONTROL_TOPIC": settings.control_topic,
        "TICKPIPE_EXECUTOR__CONTROL_KEY": settings.control_key,
    }
    tickpipe = str(Path(sys.executable).parent / "tickpipe")
    subprocess.run([tickpipe, "executor", *args], env=env, check=True, timeout=60, capture_output=True)


@pytest.mark.timeout(60)
def test_unsigned_badly_signed_and_replayed_control_messages_are_rejected_and_counted(
    kafka_settings: KafkaSettings, executor_sim_url: str, market_bridge: MarketBridge
) -> None:
    key, secret = new_account(executor_sim_url)
    settings = executor_settings(executor_sim_url, key, secret, control_max_age_ms=5000,
                                 control_key=os.urandom(16).hex())
    old_release = control_message(TradingState.ACTIVE, "old release", settings.control_key, time.time_ns() - 60 * 10**9)
    unsigned = orjson.dumps({"state": "ACTIVE", "reason": "no sig", "ts": time.time_ns()})
    forged = control_message(TradingState.ACTIVE, "forged", "not-the-key")

    with running_engine(settings, kafka_settings) as engine:
        wait_for(lambda: engine.recover_below, 20, "signals partitions assigned")
        _cli(kafka_settings, settings, "halt", "--reason", "cli halt")  # signs with the key from settings
        wait_for(lambda: engine.risk.state is TradingState.HALTED, 10, "halt applied")
        assert engine.risk.state_reason == "cli halt"

        produce(kafka_settings, settings.control_topic, [(CONTROL_KEY, m) for m in (unsigned, forged, old_release)])
        wait_for(lambda: sum(_counter(engine, "control_rejected", k) for k in ("unsigned", "bad_signature", "replayed")) == 3,
                 10, "three rejections counted")
        assert [_counter(engine, "control_rejected", k) for k in ("unsigned", "bad_signature", "replayed")] == [1, 1, 1]
        assert engine.risk.state is TradingState.HALTED

        _cli(kafka_settings, settings, "resume")
        wait_for(lambda: engine.risk.state is TradingState.ACTIVE, 10, "signed resume applied")


@pytest.mark.timeout(60)
def test_an_order_that_appears_while_halted_is_canceled(
    kafka_settings: KafkaSettings, executor_sim_url: str, market_bridge: MarketBridge
) -> None:
    # Arrange: a passive order whose POST is held in the venue past the client's timeout
    key, secret = new_account(executor_sim_url)
    # the venue executes the held POST 3 s in, after the executor's first query (NotFound), so the order stays
    # unknown until its recvWindow ends: 10 s leave room for the halt to land first on a busy machine
    settings = executor_settings(executor_sim_url, key, secret, request_timeout_ms=500, recv_window_ms=10_000,
                                 passive_ttl_ms=60_000, passive_window_ms=60_000, reprice_ticks=1_000_000,
                                 improve_ticks=0)  # join the best bid: unlikely to cross while held
    venue = BinanceVenue(executor_sim_url, key, secret, 3000)
    s = signal("BTCUSDT", "buy", "0.001", urgency=0.0, expires_in_s=40)
    cid = client_order_id(s["signal_id"], 0, 0)

    with running_engine(settings, kafka_settings) as engine, _flow_paused(executor_sim_url):
        wait_for(lambda: engine.recover_below, 20, "signals partitions assigned")
        _fault(executor_sim_url, {"late_execution": {"delay_s": 3.0}})
        produce_signals(kafka_settings, [s])
        wait_for(lambda: cid in engine.trader.live and engine.trader.live[cid].status.value == "unknown", 10,
                 "order unknown")

        # Act: halt while the order is unknown; the venue then executes the held POST (the order rests)
        send_control(kafka_settings, settings.control_topic, TradingState.HALTED, "test halt", settings.control_key)
        wait_for(lambda: engine.risk.state is TradingState.HALTED, 10, "halt applied")
        # precondition: the halt came while the order was still unknown (else the halt's own sweep cancels it)
        order = engine.trader.live.get(cid)
        assert order is not None and order.status.value == "unknown", order
        wait_for(lambda: venue_orders_of(venue, s), 10, "held order placed on the venue")

        # Assert: found by the settling query after its recvWindow, then canceled by the sticky halt
        wait_for(lambda: venue_orders_of(venue, s)[0]["status"] == "CANCELED", 20, "late order canceled")
        assert venue.open_orders() == []
    events = order_events(kafka_settings, {s["signal_id"]})[cid]
    assert [e["status"] for e in events][:3] == ["pending_new", "unknown", "new"]
    assert any(e["status"] == "pending_cancel" and "appeared while halted" in (e["reason"] or "") for e in events)


# ---- 5. positions and balances from the venue ------------------------------------------------------


def _executor_events(kafka: KafkaSettings, account: str) -> list[dict]:
    """The ExecutorEvents of ``account``, read from ``executor.health`` by the test itself (no executor state)."""
    return [e for e in records(kafka, Topic.EXECUTOR_HEALTH, "ExecutorEvent") if e["account"] == account]


@pytest.mark.timeout(60)
def test_positions_are_net_of_base_fees_and_a_trade_behind_the_executors_back_is_found_and_reduces_risk(
    kafka_settings: KafkaSettings, executor_sim_url: str, market_bridge: MarketBridge
) -> None:
    # Arrange: the executor buys BTC (the simulator charges buy fees in BTC)
    key, secret = new_account(executor_sim_url)
    settings = executor_settings(executor_sim_url, key, secret, reconcile_interval_ms=300,
                                 reconcile_max_diff_quote=Decimal(1), reconcile_breach_state="REDUCING")
    venue = BinanceVenue(executor_sim_url, key, secret, 3000)
    before = venue.balances()
    takers = [signal("BTCUSDT", "buy", "0.002", urgency=1.0) for _ in range(2)]

    with running_engine(settings, kafka_settings) as engine:
        wait_for(lambda: engine.recover_below, 20, "signals partitions assigned")
        produce_signals(kafka_settings, takers)
        wait_for(lambda: _done(engine, 2), 30, "both signals done")
        time.sleep(1.0)  # a few reconciliations
        bought = sum(Decimal(o["executedQty"]) for s in takers for o in venue_orders_of(venue, s))
        btc_change = venue.balances()["BTC"] - before["BTC"]
        assert engine.positions.get("BTCUSDT").qty == btc_change < bought  # exact, net of the BTC fees
        assert engine.last_check["diff"] == {} and engine.risk.state is TradingState.ACTIVE
        assert _executor_events(kafka_settings, key) == []  # trading itself is no difference

        # Act 1: a foreign order rests on the account for a while, then is canceled
        depth = requests.get(f"{executor_sim_url}/api/v3/depth", params={"symbol": "BTCUSDT", "limit": 5}, timeout=5).json()
        far_bid = str((Decimal(depth["bids"][0][0]) * Decimal("0.95")).quantize(Decimal("0.01")))
        rest = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.001",
                "price": far_bid}
        venue.exchange.privatePostOrder({**rest, "newClientOrderId": "manual-rest-1"})
        wait_for(lambda: [e["kind"] for e in _executor_events(kafka_settings, key)] == ["reconciliation_diff"], 10,
                 "the resting foreign order published as a difference")
        venue.cancel("BTCUSDT", "manual-rest-1")
        wait_for(lambda: [e["kind"] for e in _executor_events(kafka_settings, key)][-1:] == ["reconciliation_clear"],
                 10, "its end published as cleared")

        # Act 2: the same account trades through ccxt, behind the executor's back (an IOC and a resting order)
        manual = venue.exchange.privatePostOrder({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "IOC",
                                                  "quantity": "0.01", "price": depth["asks"][-1][0],
                                                  "newClientOrderId": "manual-ioc"})
        venue.exchange.privatePostOrder({**rest, "newClientOrderId": "manual-rest-2"})

        # Assert: reported (difference and foreign order) and risk reduced, saying why
        wait_for(lambda: engine.risk.state is TradingState.REDUCING, 10, "risk reduced by reconciliation")
        report = engine.last_check
        assert "reconciliation" in engine.risk.state_reason
        fee = sum(Decimal(f["commission"]) for f in manual.get("fills", []) if f["commissionAsset"] == "BTC")
        assert Decimal(report["diff"]["BTC"]) == Decimal(manual["executedQty"]) - fee > 0
        assert Decimal(report["diff"]["USDT"]) < 0
        assert report["foreign_open_orders"] == 1
        assert _counter(engine, "balance_diff", "BTC") > 0
        wait_for(lambda: "risk_state" in [e["kind"] for e in _executor_events(kafka_settings, key)], 10,
                 "the risk change published")

    # Assert: the topic says the same, in order: the foreign order, gone, then the trade and the risk change it caused
    # (a check between the two manual orders may publish the trade's difference before the second order rests)
    events = _executor_events(kafka_settings, key)
    kinds = [e["kind"] for e in events]
    assert kinds[:2] == ["reconciliation_diff", "reconciliation_clear"] and kinds.count("risk_state") == 1, kinds
    assert events[0]["balance_diffs"] == [] and events[0]["open_orders"] == [
        {"symbol": "BTCUSDT", "client_order_id": "manual-rest-1", "ours": False}]
    risk = events[kinds.index("risk_state")]
    trade = events[kinds.index("risk_state") - 1]  # the difference that caused it, published first
    assert trade["kind"] == "reconciliation_diff", kinds
    diffs = {d["asset"]: Decimal(d["qty"]) for d in trade["balance_diffs"]}
    assert diffs["BTC"] == Decimal(manual["executedQty"]) - fee
    assert diffs["USDT"] == -sum(Decimal(f["price"]) * Decimal(f["qty"]) for f in manual["fills"]) - sum(
        Decimal(f["commission"]) for f in manual["fills"] if f["commissionAsset"] == "USDT")
    assert Decimal(trade["value_quote"]) > settings.reconcile_max_diff_quote
    assert any(o["client_order_id"] == "manual-rest-2" and not o["ours"] for e in events[2:] for o in e["open_orders"])
    assert (trade["trading_state"], risk["trading_state"]) == ("ACTIVE", "REDUCING")
    assert "reconciliation" in risk["state_reason"] and "BTC" in risk["state_reason"]
    assert len({e["event_id"] for e in events}) == len(events)


# ---- 6. no trading on a stale or partial book ------------------------------------------------------


def _feed_event(kind: str, ts_recv: int) -> tuple[bytes, bytes]:
    record = {"event_id": f"test-{os.urandom(4).hex()}", "venue": "binance", "symbol": "BTCUSDT", "kind": kind,
              "connection_id": "", "detail": "executor test", "first_update_id": None, "last_update_id": None,
              "count": 0, "ts_event": ts_recv, "ts_recv": ts_recv}
    return b"binance:BTCUSDT", SERDE.encode("FeedEvent", record)


@pytest.mark.timeout(60)
def test_no_aggressive_order_while_the_feed_reports_the_book_stale(
    kafka_settings: KafkaSettings, executor_sim_url: str, market_bridge: MarketBridge
) -> None:
    key, secret = new_account(executor_sim_url)
    settings = executor_settings(executor_sim_url, key, secret, market_wait_ms=1500)
    venue = BinanceVenue(executor_sim_url, key, secret, 3000)
    refused = signal("BTCUSDT", "buy", "0.001", urgency=1.0)
    allowed = signal("BTCUSDT", "buy", "0.001", urgency=1.0)

    with running_engine(settings, kafka_settings) as engine:
        wait_for(lambda: engine.recover_below, 20, "signals partitions assigned")
        try:
            # stale "from the future": the bridge's snapshots (received now) do not clear it, only `recovered`
            produce(kafka_settings, Topic.HEALTH.value, [_feed_event("stale", time.time_ns() + 30 * 10**9)])
            wait_for(lambda: engine.market.unfit("binance", "BTCUSDT", time.time_ns(), 0), 10, "stale seen")

            produce_signals(kafka_settings, [refused])
            wait_for(lambda: _counter(engine, "denied", "stale_book") == 1, 10, "IOC refused on the stale book")
            assert venue_orders_of(venue, refused) == []
        finally:
            produce(kafka_settings, Topic.HEALTH.value, [_feed_event("recovered", time.time_ns())])
        wait_for(lambda: engine.market.unfit("binance", "BTCUSDT", time.time_ns(), 0) is None, 10, "recovered")
        produce_signals(kafka_settings, [allowed])
        wait_for(lambda: venue_orders_of(venue, allowed), 10, "IOC sent once the feed recovered")

    denied = [e for evs in order_events(kafka_settings, {refused["signal_id"]}).values() for e in evs]
    assert [e["status"] for e in denied] == ["denied"] and "stale" in denied[0]["reason"]


@pytest.mark.timeout(60)
def test_after_a_restart_the_book_has_full_depth_from_the_venue_before_any_market_data(
    kafka_settings: KafkaSettings, executor_sim_url: str, market_bridge: MarketBridge
) -> None:
    key, secret = new_account(executor_sim_url)
    settings = executor_settings(executor_sim_url, key, secret)

    with set_up_engine(settings, kafka_settings) as engine:  # start-up only: no market-data record read yet
        for symbol in ("BTCUSDT", "ETHUSDT"):
            book = engine.market.snapshot("binance", symbol)
            assert book is not None and len(book.bids) >= 5 and len(book.asks) >= 5, (symbol, book)
            assert book.bids[0][0] < book.asks[0][0]
            assert engine.market.unfit("binance", symbol, time.time_ns(), 5 * 10**9) is None



# ---- 3. a refused transition keeps the order managed -------------------------------------------------


@pytest.mark.timeout(60)
def test_a_venue_report_the_table_refuses_keeps_the_order_live_and_its_run_open_until_the_venue_closes_it(
    kafka_settings: KafkaSettings, executor_sim_url: str, market_bridge: MarketBridge
) -> None:
    # Arrange: the engine set up (real broker, real venue); an order of a signal rests on the venue while
    # the executor believes it was never placed (pending_new -> unknown -> not_found -> rejected)
    key, secret = new_account(executor_sim_url)
    settings = executor_settings(executor_sim_url, key, secret)
    venue = BinanceVenue(settings.rest_url, key, secret, settings.request_timeout_ms)
    s = signal("BTCUSDT", "buy", "0.001", urgency=0.0)
    with set_up_engine(settings, kafka_settings) as engine:
        bid = engine.market.quote("binance", "BTCUSDT").bid
        run = SignalRun(s, 0, 0, time.time_ns(), Side.BUY, Decimal("0.001"))
        order = engine.trader._next_order(run, OrderType.LIMIT, TimeInForce.GTC, (bid * Decimal("0.9")).quantize(Decimal("0.01")),
                                          Decimal("0.001"))
        for trigger in (OrderTrigger.SUBMIT, OrderTrigger.OUTCOME_UNKNOWN, OrderTrigger.NOT_FOUND):
            order.apply(trigger)
        venue.submit(order.command)  # yet the venue has it, resting

        # Act: the venue's report reaches the trader
        engine.trader._apply_venue_order(order, venue.query("BTCUSDT", order.client_order_id))
        engine.trader.step(run)  # re-queried: still refused

        # Assert: nothing changed on the order, it stays managed, its run open, the refusal counted
        assert order.status is OrderStatus.REJECTED and order.filled_qty == 0 and order.venue_order_id is None
        assert engine.trader.live[order.client_order_id] is order and order.client_order_id in engine.trader.disputed
        assert engine.trader.exposure("BTCUSDT") == Decimal("0.001")  # the exposure check sees it resting
        assert not run.done and run.next_action_at > time.time_ns()
        assert _counter(engine, "invalid_transitions") == 1

        # the kill switch cancels it on the venue although the table allows no cancel from `rejected`
        engine.cancel_all("test halt")
        assert venue.query("BTCUSDT", order.client_order_id)["status"] == "CANCELED"
        run.next_action_at = 0
        engine.trader.step(run)  # closed on the venue with nothing executed: no longer managed
        assert order.client_order_id not in engine.trader.live and order.client_order_id not in engine.trader.disputed


# ---- 8. no error dropped silently ------------------------------------------------------------------


@pytest.mark.timeout(90)
def test_a_lost_broker_is_a_consumer_error_of_the_market_and_control_loops_logged_and_counted_on_metrics(
    executor_sim_url: str, tmp_path: Path
) -> None:
    # Arrange: an executor process on a broker of its own (the session's broker is shared)
    key, secret = new_account(executor_sim_url)
    port = str(free_port())
    health = f"http://127.0.0.1:{port}/health"
    log = tmp_path / "executor.log"
    with private_broker(tmp_path / "kafka") as (kafka, broker):
        env = environ_without_settings() | {
            "TICKPIPE_KAFKA__BOOTSTRAP": kafka.bootstrap,
            "TICKPIPE_EXECUTOR__REST_URL": executor_sim_url,
            "TICKPIPE_EXECUTOR__API_KEY": key,
            "TICKPIPE_EXECUTOR__ACCOUNT": key,
            "TICKPIPE_EXECUTOR__API_SECRET": secret,
            "TICKPIPE_EXECUTOR__METRICS_PORT": port,
            "TICKPIPE_LOG_LEVEL": "INFO",
        }
        proc = start_executor_process(env, log)
        try:
            wait_for(lambda: requests.get(health, timeout=2).json().get("ok"), 30, "executor up",
                     tolerate=(requests.RequestException,))
            # its signals group has its partitions (a broker lost in the middle of the assignment ends the process:
            # the offsets it needs to resume safely cannot be read; the supervisor restarts it)
            admin = AdminClient({"bootstrap.servers": kafka.bootstrap})
            group = ExecutorSettings().group_id
            wait_for(lambda: any(m.assignment.topic_partitions for m in
                                 admin.describe_consumer_groups([group])[group].result(5).members), 20, "signals assigned")
            time.sleep(0.5)
            assert _metric(port, "executor_consumer_errors_total", 'loop="market"') == 0

            # Act: the broker dies under the running executor
            broker.send_signal(os_signal.SIGKILL)
            broker.wait(10)

            # Assert: each loop's consumer reports it, on /metrics, and the executor keeps serving
            for loop in ("market", "control"):
                wait_for(lambda loop=loop: _metric(port, "executor_consumer_errors_total", f'loop="{loop}"') >= 1, 20,
                         f"the {loop} loop's consumer error counted on /metrics")
            assert requests.get(health, timeout=2).json()["ok"]
        finally:
            stop_process(proc, timeout_s=20)
    errors = [orjson.loads(line) for line in log.read_bytes().splitlines() if b'"consumer error"' in line]
    assert {e["loop"] for e in errors} >= {"market", "control"}
    for error in errors:  # each with its context: which loop, what, and whether it is fatal or retriable
        assert error["level"] == "error" and error["service"] == "executor", error
        assert error["error_name"] in ("_TRANSPORT", "_ALL_BROKERS_DOWN") and error["error"], error
        assert error["fatal"] is False and isinstance(error["retriable"], bool) and isinstance(error["code"], int)
