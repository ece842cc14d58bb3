"""Executor benchmark: signal-to-acknowledgement latency and sustained orders/s on loopback.

Starts its own Kafka broker and simulated exchange (high ORDERS limit so the venue's rate limit is not
what is measured), publishes the sim's book to ``md.bbo``/``md.book``, runs the executor engine and
feeds urgency-1 signals (one IOC each).  Latency = the ``new`` OrderEvent's ``ts_emit`` minus the
signal's ``ts_emit`` (signal published -> consumed -> risk -> venue ack -> event).  Throughput = acks/s
while a backlog of signals is drained.  The natural alternative measured in the same run: the same
ccxt client placing the same orders in a bare loop (no Kafka, no risk, no state machine) — the ceiling.

Then, in the same run, the REST path against the WebSocket API path (``ws_api_url`` set: orders over
the session, state and fills by push) on the same signals over 4 symbols (BTC, ETH, BNB, SOL against
USDT), each path on a fresh engine and account: signal->ack, ack->fill event (the Fill's ``ts_emit``
minus the order's ``new`` event's) and venue match->fill event (the Fill's ``ts_recv`` minus its
``ts_event``, the venue's trade time: millisecond resolution) p50/p99, and sustained orders/s.

Usage: ``.venv/bin/python bench/executor.py [--paced 300] [--burst 2000] [--compare-paced 200]
[--compare-burst 2000]`` (``--compare-burst 0`` skips the comparison)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path

import requests
from confluent_kafka import Consumer, Producer, TopicPartition
from prometheus_client import CollectorRegistry

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from executor.commands import OrderType, Side, SubmitOrder, TimeInForce
from executor.control import ensure_control_topic
from executor.engine import Engine
from executor.metrics import ExecutorMetrics
from executor.venue import BinanceVenue
from infra.broker import private_broker
from infra.settings import KafkaSettings
from schemas.topics import Topic, instrument_key
from sim_exchange.process import start_sim_exchange
from tests.integration.executor.harness import (
    SERDE,
    MarketBridge,
    executor_settings,
    new_account,
    produce_signals,
    records,
    signal,
)

COMPARE_SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT")
COMPARE_QTY = {"BTCUSDT": "0.0001", "ETHUSDT": "0.002", "BNBUSDT": "0.01", "SOLUSDT": "0.04"}  # ~6 USDT each


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _acks(kafka: KafkaSettings, ids: set[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for e in records(kafka, Topic.ORDERS, "OrderEvent"):
        if e["signal_id"] in ids and e["status"] == "new" and e["signal_id"] not in out:
            out[e["signal_id"]] = e["ts_emit"]
    return out


def _wait_acks(kafka: KafkaSettings, ids: set[str], timeout_s: float) -> dict[str, int]:
    """Wait until ``orders`` stops growing, then read it once for the acks of ``ids``.

    Only the topic's end offsets are watched meanwhile: reading and decoding the whole topic every
    second (as this bench did until 2026-12-06) ran in this process, beside the engine thread under
    test, and took the GIL from it for longer the more order events each version publishes.
    """
    deadline = time.monotonic() + timeout_s
    acks: dict[str, int] = {}
    watcher = Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": "bench-watch", "enable.auto.commit": False})
    try:
        topic = Topic.ORDERS.value
        partitions = [TopicPartition(topic, p) for p in watcher.list_topics(topic, timeout=10).topics[topic].partitions]
        last, still_since = -1, time.monotonic()
        while time.monotonic() < deadline:
            end = sum(watcher.get_watermark_offsets(tp, timeout=10)[1] for tp in partitions)
            if end != last:
                last, still_since = end, time.monotonic()
                print(f"  order events {end}", flush=True)
            elif time.monotonic() - still_since >= 1.5:
                acks = _acks(kafka, ids)
                if len(acks) >= len(ids):
                    break
                still_since = time.monotonic()
            time.sleep(0.25)
    finally:
        watcher.close()
    return acks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paced", type=int, default=300, help="signals sent one every 20 ms (latency)")
    parser.add_argument("--burst", type=int, default=2000, help="signals sent at once (throughput)")
    parser.add_argument("--compare-paced", type=int, default=200, help="REST vs WebSocket API: paced signals")
    parser.add_argument("--compare-burst", type=int, default=2000, help="REST vs WebSocket API: burst (0: skip)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-executor-"))
    with private_broker(tmp / "kafka") as (kafka, _):
        sim = start_sim_exchange(log_path=tmp / "sim.log", events_per_s=40, weight_limit_1m=100_000_000,
                                 orders_limit_10s=1_000_000, orders_limit_1d=100_000_000,
                                 symbols=",".join(COMPARE_SYMBOLS))
        try:
            _run(args, kafka, sim.rest_url)
            if args.compare_burst:
                _compare(args, kafka, sim.rest_url)
        finally:
            sim.stop()


def _compare(args: argparse.Namespace, kafka: KafkaSettings, sim_url: str) -> None:
    # the same signals (symbol, side, size) on both paths; ids differ (each path is its own account)
    plan = [(COMPARE_SYMBOLS[i % 4], "buy" if (i // 4) % 2 else "sell") for i in range(args.compare_paced + args.compare_burst)]
    bridge = MarketBridge(kafka, sim_url, symbols=COMPARE_SYMBOLS).start()
    try:
        results = {path: _path(kafka, sim_url, path, plan[:args.compare_paced], plan[args.compare_paced:])
                   for path in ("rest", "ws")}
    finally:
        bridge.stop()
    print()
    print("## Executor figures: REST vs WebSocket API (same signals, 4 symbols in flight)")
    print("| path | signal->ack p50 / p99 ms | ack->fill event p50 / p99 ms | venue match->fill event p50 / p99 ms "
          "| sustained orders/s |")
    print("|---|---|---|---|---|")
    for path, r in results.items():
        print(f"| {path} | {_p(r['ack'])} | {_p(r['fill'])} | {_p(r['match'])} | {r['rate']:.0f} |")
    if results["rest"]["rate"]:
        print(f"WebSocket API / REST orders/s = {results['ws']['rate'] / results['rest']['rate']:.2f}")


def _p(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"{statistics.median(values):.2f} / {_pct(values, 0.99):.2f}"


def _path(kafka: KafkaSettings, sim_url: str, path: str, paced_plan: list[tuple[str, str]],
          burst_plan: list[tuple[str, str]]) -> dict:
    key, secret = new_account(sim_url, {"BTC": "1000", "ETH": "10000", "BNB": "100000", "SOL": "100000",
                                        "USDT": "100000000"})
    ws_url = sim_url.replace("http://", "ws://") + "/ws-api/v3" if path == "ws" else ""
    settings = executor_settings(sim_url, key, secret, symbols=",".join(COMPARE_SYMBOLS), max_open_orders=10_000,
                                 max_inflight_signals=500, max_position="1000000", poll_interval_ms=200,
                                 ws_api_url=ws_url)
    ensure_control_topic(kafka, settings.control_topic)
    venue = BinanceVenue(sim_url, key, secret, 3000)
    engine = Engine(settings, kafka, venue, ExecutorMetrics(CollectorRegistry()))
    thread = threading.Thread(target=engine.run, daemon=True)
    thread.start()
    try:
        while not engine.recover_below or (ws_url and not engine.trader.push_up):
            time.sleep(0.1)

        def signals(plan: list[tuple[str, str]]) -> list[dict]:
            return [signal(sym, side, COMPARE_QTY[sym], urgency=1.0, expires_in_s=300) for sym, side in plan]

        print(f"{path}: paced {len(paced_plan)} signals, one every 20 ms", flush=True)
        producer = Producer({"bootstrap.servers": kafka.bootstrap, "enable.idempotence": True, "linger.ms": 0})
        paced = []
        for s in signals(paced_plan):
            s["ts_emit"] = time.time_ns()
            producer.produce(Topic.SIGNALS.value, SERDE.encode("Signal", s), instrument_key("binance", s["symbol"]))
            producer.flush(5)
            paced.append(s)
            time.sleep(0.02)
        acks = _wait_acks(kafka, {s["signal_id"] for s in paced}, 120)
        print(f"{path}: burst {len(burst_plan)} signals at once", flush=True)
        burst = signals(burst_plan)
        t0 = time.time_ns()
        produce_signals(kafka, burst)
        acks_b = _wait_acks(kafka, {s["signal_id"] for s in burst}, 300)
    finally:
        engine.stop()
        thread.join(30)
    span_s = (max(acks_b.values()) - t0) / 1e9 if acks_b else 0.0
    ids = {s["signal_id"] for s in paced}
    fills = [f for f in records(kafka, Topic.FILLS, "Fill") if f["signal_id"] in ids]
    return {
        "ack": [(acks[s["signal_id"]] - s["ts_emit"]) / 1e6 for s in paced if s["signal_id"] in acks],
        "fill": [(f["ts_emit"] - acks[f["signal_id"]]) / 1e6 for f in fills if f["signal_id"] in acks],
        "match": [(f["ts_recv"] - f["ts_event"]) / 1e6 for f in fills],
        "rate": len(acks_b) / span_s if span_s else 0.0,
    }


def _run(args: argparse.Namespace, kafka: KafkaSettings, sim_url: str) -> None:
    bridge = None
    try:
        bridge = MarketBridge(kafka, sim_url).start()
        key, secret = new_account(sim_url, {"BTC": "1000", "ETH": "10000", "USDT": "100000000"})
        settings = executor_settings(sim_url, key, secret, max_open_orders=10_000, max_inflight_signals=500,
                                     max_position="1000000", poll_interval_ms=200)
        ensure_control_topic(kafka, settings.control_topic)
        venue = BinanceVenue(sim_url, key, secret, 3000)
        engine = Engine(settings, kafka, venue, ExecutorMetrics(CollectorRegistry()))
        thread = threading.Thread(target=engine.run, daemon=True)
        thread.start()
        while not engine.recover_below:
            time.sleep(0.1)

        def batch(n: int) -> list[dict]:
            return [signal("BTCUSDT", "buy" if i % 2 else "sell", "0.0001", urgency=1.0, expires_in_s=300)
                    for i in range(n)]

        print(f"paced: {args.paced} signals, one every 20 ms", flush=True)
        paced = []
        producer = Producer({"bootstrap.servers": kafka.bootstrap, "enable.idempotence": True, "linger.ms": 0})
        for s in batch(args.paced):
            s["ts_emit"] = time.time_ns()
            producer.produce(Topic.SIGNALS.value, SERDE.encode("Signal", s), instrument_key("binance", s["symbol"]))
            producer.flush(5)
            paced.append(s)
            time.sleep(0.02)
        acks = _wait_acks(kafka, {s["signal_id"] for s in paced}, 120)
        lat = [(acks[s["signal_id"]] - s["ts_emit"]) / 1e6 for s in paced if s["signal_id"] in acks]

        print(f"burst: {args.burst} signals at once", flush=True)
        burst = batch(args.burst)
        t0 = time.time_ns()
        produce_signals(kafka, burst)
        acks_b = _wait_acks(kafka, {s["signal_id"] for s in burst}, 300)
        span_s = (max(acks_b.values()) - t0) / 1e9

        engine.stop()
        thread.join(30)

        print("ceiling: bare ccxt loop, same orders, no Kafka/risk/state machine", flush=True)
        quote = requests.get(f"{sim_url}/api/v3/ticker/bookTicker", params={"symbol": "BTCUSDT"}, timeout=2).json()
        n_bare = min(1000, args.burst)
        t1 = time.perf_counter()
        for i in range(n_bare):
            side = Side.BUY if i % 2 else Side.SELL
            price = Decimal(quote["askPrice"]) * Decimal("1.001") if side is Side.BUY else Decimal(quote["bidPrice"]) * Decimal("0.999")
            venue.submit(SubmitOrder(f"bench-{i}-{time.time_ns() % 10**9}", "b", "binance", "BTCUSDT", side,
                                     OrderType.LIMIT, TimeInForce.IOC, price.quantize(Decimal("0.01")),
                                     Decimal("0.0001"), 0, 0))
        bare_rate = n_bare / (time.perf_counter() - t1)

        print()
        print("## Executor figures")
        print(f"signal-to-ack latency (paced, n={len(lat)}): p50 {statistics.median(lat):.2f} ms, "
              f"p99 {_pct(lat, 0.99):.2f} ms, max {max(lat):.2f} ms")
        print(f"sustained: {len(acks_b)} orders acknowledged in {span_s:.2f} s = {len(acks_b) / span_s:.0f} orders/s")
        print(f"bare ccxt loop: {bare_rate:.0f} orders/s; executor / bare = {len(acks_b) / span_s / bare_rate:.2f}")
    finally:
        if bridge is not None:
            bridge.stop()


if __name__ == "__main__":
    main()
