"""Executor benchmark: signal-to-acknowledgement latency and sustained orders/s on loopback.

Starts its own Kafka broker and simulated exchange (high ORDERS limit so the venue's rate limit is not
what is measured), publishes the sim's book to ``md.bbo``/``md.book``, runs the executor engine and
feeds urgency-1 signals (one IOC each).  Latency = the ``new`` OrderEvent's ``ts_emit`` minus the
signal's ``ts_emit`` (signal published -> consumed -> risk -> venue ack -> event).  Throughput = acks/s
while a backlog of signals is drained.  The natural alternative measured in the same run: the same
ccxt client placing the same orders in a bare loop (no Kafka, no risk, no state machine) — the ceiling.

Usage: ``.venv/bin/python bench/executor.py [--paced 300] [--burst 2000]``
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
from confluent_kafka import Producer
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
    deadline = time.monotonic() + timeout_s
    acks: dict[str, int] = {}
    while time.monotonic() < deadline:
        acks = _acks(kafka, ids)
        if len(acks) >= len(ids):
            break
        print(f"  acks {len(acks)}/{len(ids)}", flush=True)
        time.sleep(1.0)
    return acks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paced", type=int, default=300, help="signals sent one every 20 ms (latency)")
    parser.add_argument("--burst", type=int, default=2000, help="signals sent at once (throughput)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-executor-"))
    with private_broker(tmp / "kafka") as (kafka, _):
        sim = start_sim_exchange(log_path=tmp / "sim.log", events_per_s=40, weight_limit_1m=100_000_000,
                                 orders_limit_10s=1_000_000, orders_limit_1d=100_000_000)
        try:
            _run(args, kafka, sim.rest_url)
        finally:
            sim.stop()


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
