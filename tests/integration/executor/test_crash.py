"""Crash test: 1,000 signals, faults on, the executor (a real subprocess) killed -9 several times."""

from __future__ import annotations

import itertools
import os
import random
import signal as os_signal
import threading
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest
import requests

from executor.venue import BinanceVenue
from infra.broker import free_port
from infra.processes import stop_process
from infra.settings import KafkaSettings, environ_without_settings
from schemas.topics import Topic
from tests.integration.executor.harness import (
    MarketBridge,
    new_account,
    produce_signals,
    records,
    signal,
    start_executor_process,
    start_group_at_end,
    venue_orders_of,
)
from tests.polling import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.faults]
N_SIGNALS = 1000
KILLS = 3


@pytest.mark.timeout(240)
@pytest.mark.parametrize("path", ["rest", "ws_api"])
def test_kill_9_under_faults_acts_on_every_signal_exactly_once(
    kafka_settings: KafkaSettings, executor_sim_url: str, market_bridge: MarketBridge, tmp_path: Path, path: str
) -> None:
    # path: orders over REST, or over the WebSocket API with state and fills by push (the same REST
    # faults act on it: a 5xx after execution, an answer held past the timeout, 429 bursts)
    # Arrange
    key, secret = new_account(executor_sim_url, {"BTC": "100", "ETH": "1000", "USDT": "10000000"})
    venue = BinanceVenue(executor_sim_url, key, secret, 5000)
    before = venue.balances()
    tag = os.urandom(4).hex()
    env = environ_without_settings() | {
        "TICKPIPE_KAFKA__BOOTSTRAP": kafka_settings.bootstrap,
        "TICKPIPE_EXECUTOR__GROUP_ID": f"crash-{tag}",
        "TICKPIPE_EXECUTOR__CONTROL_TOPIC": f"executor.control.{tag}",
        "TICKPIPE_EXECUTOR__REST_URL": executor_sim_url,
        "TICKPIPE_EXECUTOR__API_KEY": key,
        "TICKPIPE_EXECUTOR__ACCOUNT": key,
        "TICKPIPE_EXECUTOR__API_SECRET": secret,
        "TICKPIPE_EXECUTOR__METRICS_PORT": str(free_port()),
        "TICKPIPE_EXECUTOR__SYMBOLS": "BTCUSDT,ETHUSDT",
        "TICKPIPE_EXECUTOR__MAX_SIGNAL_AGE_MS": "600000",
        "TICKPIPE_EXECUTOR__SIGNALS_OFFSET_RESET": "earliest",
        "TICKPIPE_EXECUTOR__REQUEST_TIMEOUT_MS": "800",
        "TICKPIPE_LOG_LEVEL": "WARNING",
    }
    if path == "ws_api":
        env["TICKPIPE_EXECUTOR__WS_API_URL"] = executor_sim_url.replace("http://", "ws://") + "/ws-api/v3"
        # with orders in flight side by side, the default 50 open orders is reached and the rest denied (the
        # risk rule, by design); this test is about acting once, so every signal must reach the venue
        env["TICKPIPE_EXECUTOR__MAX_OPEN_ORDERS"] = "1000"
    rng = random.Random(7)
    signals = [
        signal(rng.choice(["BTCUSDT", "ETHUSDT"]), rng.choice(["buy", "sell"]), "0.001" if i % 2 else "0.002",
               urgency=1.0, expires_in_s=600)
        for i in range(N_SIGNALS)
    ]
    for s in signals:
        if s["symbol"] == "ETHUSDT":
            s["target"] = "0.01"
    requests.post(f"{executor_sim_url}/_sim/faults", timeout=5,
                  json={"http_429": {"seconds": 0.2, "probability": 0.3, "retry_after_s": 1, "after_s": 3}}
                  ).raise_for_status()
    stop_faults = threading.Event()

    def inject_lost_answers() -> None:
        # alternately a 5xx after execution and an answer held past the executor's timeout (a lost response);
        # on the WebSocket API the executionReport overtakes a held answer, so a lost session (the order
        # executed, the connection dropped unanswered) stands in for the lost response there
        held = {"rest_error": {"mode": "timeout", "count": 1, "path": "/api/v3/order", "method": "POST",
                               "after_execution": True, "delay_s": 1.5}}
        lost = {"answer_lost": {"count": 1, "path": "/api/v3/order", "method": "POST"}}
        error = {"rest_error": {"mode": "error", "count": 1, "path": "/api/v3/order", "method": "POST",
                                "after_execution": True}}
        for fault in itertools.cycle([error, error, held] + ([lost] if path == "ws_api" else [])):
            requests.post(f"{executor_sim_url}/_sim/faults", json=fault, timeout=5)
            if stop_faults.wait(0.5):
                return

    injector = threading.Thread(target=inject_lost_answers, daemon=True)
    log = tmp_path / "executor.log"

    # Act: kill -9 at random points of the progress (fractions of signals with an OrderEvent)
    ids = {s["signal_id"] for s in signals}

    def progress() -> int:
        return len({e["signal_id"] for e in records(kafka_settings, Topic.ORDERS, "OrderEvent")} & ids)

    # both variants share `signals`: the group starts at its end, so neither acts on the other's signals
    start_group_at_end(kafka_settings, env["TICKPIPE_EXECUTOR__GROUP_ID"])
    proc = start_executor_process(env, log)
    kill_points = sorted(rng.uniform(0.05, 0.9) for _ in range(KILLS))
    feed_limit = [int(kill_points[0] * N_SIGNALS) + 100]  # signals the push path's feed may produce for now
    seen_at_kill = []
    injector.start()
    try:
        if path == "rest":
            produce_signals(kafka_settings, signals)
        else:  # the push path drains 1,000 signals faster than progress() is read: feed them over ~10 s, and
            # never more than 100 past the next kill point before that kill (a restart's backlog once drained
            # to the end between two reads of progress(), so the last kill came after every signal)
            def feed() -> None:
                for i in range(0, N_SIGNALS, 50):
                    while i >= feed_limit[0] and not stop_faults.is_set():
                        stop_faults.wait(0.05)
                    produce_signals(kafka_settings, signals[i:i + 50])
                    stop_faults.wait(0.5)
            threading.Thread(target=feed, daemon=True).start()
        for k, fraction in enumerate(kill_points):
            seen_at_kill.append(wait_for(lambda f=fraction: (n := progress()) >= f * N_SIGNALS and n, 90,
                                         f"{fraction:.0%} of signals acted on", interval_s=0.1))
            feed_limit[0] = int(kill_points[k + 1] * N_SIGNALS) + 100 if k + 1 < len(kill_points) else N_SIGNALS
            proc.send_signal(os_signal.SIGKILL)
            proc.wait(10)
            proc = start_executor_process(env, log)
        stop_faults.set()
        injector.join(10)
        requests.delete(f"{executor_sim_url}/_sim/faults", timeout=5)

        def settled() -> bool:
            done: dict[str, bool] = {}
            for e in records(kafka_settings, Topic.ORDERS, "OrderEvent"):
                if e["signal_id"] in ids:
                    done[e["signal_id"]] = e["status"] in {"filled", "expired", "canceled", "rejected", "denied"}
            return len(done) == len(ids) and all(done.values()) and not venue.open_orders()

        wait_for(settled, 150, "every signal's orders terminal", interval_s=2.0)
        health_url = f"http://127.0.0.1:{env['TICKPIPE_EXECUTOR__METRICS_PORT']}/health"
        # the last restarted process may still be starting: its /health has no "inflight" yet, or no answer
        health = wait_for(lambda: (h := requests.get(health_url, timeout=2).json()).get("inflight") == 0 and h, 30,
                          "executor idle", tolerate=(requests.RequestException, ValueError))
        assert health["ok"] and health["trading_state"] == "ACTIVE" and health["open_orders"] == 0
    finally:
        stop_faults.set()
        stop_process(proc, timeout_s=20)
        requests.delete(f"{executor_sim_url}/_sim/faults", timeout=5)

    # Assert: the kills hit mid-stream and the faults left orders unknown
    assert all(0 < n < N_SIGNALS for n in seen_at_kill), seen_at_kill
    events = [e for e in records(kafka_settings, Topic.ORDERS, "OrderEvent") if e["signal_id"] in ids]
    unknown = [e for e in events if e["status"] == "unknown"]
    codes = sorted({str(e["error_code"]) for e in unknown})
    assert any(e["error_code"] is None for e in unknown), codes  # lost answer: client timeout (or session), no code
    if path == "rest":
        assert any(e["error_code"] == -1007 for e in unknown)  # 5xx after execution
    else:  # the executionReport came before the 5xx answer: the order was known, never unknown; the faults did hit
        metrics = requests.get(f"{executor_sim_url}/metrics", timeout=5).text
        assert any(line.startswith('sim_ws_api_requests_total{method="order.place",status="503"}')
                   and float(line.rsplit(" ", 1)[1]) > 0 for line in metrics.splitlines()), \
            [line for line in metrics.splitlines() if line.startswith("sim_ws_api_requests_total")]
    # every signal acted on exactly once on the venue
    venue_order_ids: set[str] = set()
    for s in signals:
        orders = venue_orders_of(venue, s)
        assert orders, (f"signal {s['signal_id']} has no order on the venue: "
                        f"{[(e['client_order_id'], e['status'], e['reason']) for e in events if e['signal_id'] == s['signal_id']]}")
        filled = sum(Decimal(o["executedQty"]) for o in orders)
        assert filled <= Decimal(s["target"]), f"signal {s['signal_id']} over-filled: {filled}"
        venue_order_ids |= {str(o["orderId"]) for o in orders}
    traded_orders = {str(t["orderId"]) for sym in ("BTCUSDT", "ETHUSDT") for t in venue.my_trades(sym, limit=1000)}
    assert traded_orders <= venue_order_ids, "an execution belongs to an order not reachable by its client id"
    assert venue.open_orders() == []
    # positions from `fills` equal the venue's balance deltas
    fills = {(f["symbol"], f["trade_id"]): f for f in records(kafka_settings, Topic.FILLS, "Fill")
             if f["client_order_id"].startswith("tp-") and f["signal_id"] in {s["signal_id"] for s in signals}}
    delta: dict[str, Decimal] = defaultdict(Decimal)
    for f in fills.values():
        base, quote = f["symbol"][:-4], f["symbol"][-4:]
        sign = 1 if f["side"] == "buy" else -1
        delta[base] += sign * Decimal(f["qty"])
        delta[quote] -= sign * Decimal(f["qty"]) * Decimal(f["price"])
        delta[f["fee_asset"]] -= Decimal(f["fee"])
    after = venue.balances()
    for asset in ("BTC", "ETH", "USDT"):
        assert after.get(asset, Decimal(0)) - before.get(asset, Decimal(0)) == delta[asset], asset
