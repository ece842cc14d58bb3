"""Test harness for executor integration tests: signals in, records out, a market-data bridge.

The bridge stands in for the feed producers: it reads the simulated exchange's REST book and publishes
real ``BBO`` and ``BookDelta`` snapshot records to ``md.bbo`` / ``md.book`` on the real broker.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests
from confluent_kafka import Producer
from prometheus_client import CollectorRegistry

from executor.engine import Engine
from executor.ids import client_order_id
from executor.metrics import ExecutorMetrics
from executor.venue import BinanceVenue, NotFound
from infra.settings import ExecutorSettings, KafkaSettings
from infra.topics import read_to_end
from schemas.serde import AvroSerde
from schemas.topics import Topic, instrument_key

SERDE = AvroSerde()
SYMBOLS = ("BTCUSDT", "ETHUSDT")


def signal(
    symbol: str = "BTCUSDT", side: str = "buy", target: str = "0.001", urgency: float = 1.0,
    expires_in_s: float = 30.0, signal_id: str | None = None, reference_price: str = "0", age_s: float = 0.0,
) -> dict[str, Any]:
    """A Signal record as the streams stage would emit it."""
    now = time.time_ns()
    return {
        "signal_id": signal_id or uuid.uuid4().hex, "venue": "binance", "symbol": symbol, "side": side,
        "strength": 1.0 if side == "buy" else -1.0, "target": target, "urgency": urgency, "model": "test@1",
        "expires_at": now + int(expires_in_s * 1e9), "reference_price": reference_price, "inputs": [],
        "ts_event": now - int(age_s * 1e9), "ts_recv": now - int(age_s * 1e9), "ts_emit": now - int(age_s * 1e9),
    }


def produce(kafka: KafkaSettings, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    """Produce ``(key, value)`` pairs and wait for delivery."""
    producer = Producer({"bootstrap.servers": kafka.bootstrap, "enable.idempotence": True, "linger.ms": 5})
    for key, value in records:
        producer.produce(topic, value, key)
        producer.poll(0)
    assert producer.flush(30) == 0


def produce_signals(kafka: KafkaSettings, signals: list[dict[str, Any]]) -> None:
    """Publish Signal records to ``signals`` keyed by instrument."""
    produce(kafka, Topic.SIGNALS.value,
            [(instrument_key(s["venue"], s["symbol"]), SERDE.encode("Signal", s)) for s in signals])


def records(kafka: KafkaSettings, topic: Topic, name: str) -> list[dict[str, Any]]:
    """Decoded records of ``topic``."""
    return [SERDE.decode_as(name, m.value()) for m in read_to_end(kafka.bootstrap, topic.value)]


def order_events(kafka: KafkaSettings, signal_ids: set[str], by: str = "client_order_id") -> dict[str, list[dict]]:
    """OrderEvents of ``signal_ids`` from ``orders``, grouped by the field ``by``, in topic order."""
    out: dict[str, list[dict]] = defaultdict(list)
    for event in records(kafka, Topic.ORDERS, "OrderEvent"):
        if event["signal_id"] in signal_ids:
            out[event[by]].append(event)
    return out


class MarketBridge:
    """Publishes the simulated exchange's top 20 levels as BBO + BookDelta snapshots every ``period_s``."""

    def __init__(self, kafka: KafkaSettings, sim_url: str, period_s: float = 0.05,
                 symbols: tuple[str, ...] = SYMBOLS) -> None:
        self.kafka, self.sim_url, self.period_s, self.symbols = kafka, sim_url, period_s, symbols
        self._stop = threading.Event()
        self._ids = itertools.count(1)
        self.thread = threading.Thread(target=self._run, name="md-bridge", daemon=True)

    def _run(self) -> None:
        producer = Producer({"bootstrap.servers": self.kafka.bootstrap, "linger.ms": 5})
        session = requests.Session()
        while not self._stop.is_set():
            for symbol in self.symbols:
                try:
                    depth = session.get(f"{self.sim_url}/api/v3/depth", params={"symbol": symbol, "limit": 20}, timeout=2).json()
                except requests.RequestException:
                    continue
                if not depth.get("bids") or not depth.get("asks"):
                    continue
                now, uid = time.time_ns(), depth["lastUpdateId"]
                key = instrument_key("binance", symbol)
                bbo = {"venue": "binance", "symbol": symbol, "update_id": uid,
                       "bid_price": depth["bids"][0][0], "bid_qty": depth["bids"][0][1],
                       "ask_price": depth["asks"][0][0], "ask_qty": depth["asks"][0][1], "ts_event": now, "ts_recv": now}
                book = {"venue": "binance", "symbol": symbol, "snapshot": True, "first_update_id": uid,
                        "last_update_id": uid, "bids": [{"price": p, "qty": q} for p, q in depth["bids"]],
                        "asks": [{"price": p, "qty": q} for p, q in depth["asks"]], "ts_event": now, "ts_recv": now}
                producer.produce(Topic.BBO.value, SERDE.encode("BBO", bbo), key)
                producer.produce(Topic.BOOK.value, SERDE.encode("BookDelta", book), key)
            producer.poll(0)
            self._stop.wait(self.period_s)
        producer.flush(5)

    def start(self) -> MarketBridge:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(10)


def new_account(sim_url: str, balances: dict[str, str] | None = None) -> tuple[str, str]:
    """Create a fresh sim account (isolated balances and orders); return ``(key, secret)``."""
    key, secret = f"k{uuid.uuid4().hex[:16]}", uuid.uuid4().hex
    body = {"api_key": key, "api_secret": secret,
            "balances": balances or {"BTC": "10", "ETH": "100", "USDT": "1000000"}}
    requests.post(f"{sim_url}/_sim/accounts", json=body, timeout=5).raise_for_status()
    return key, secret


def executor_settings(sim_url: str, key: str, secret: str, **overrides: Any) -> ExecutorSettings:
    """Executor settings for one test: own group, own control topic, fresh account (named by its key)."""
    tag = uuid.uuid4().hex[:8]
    base = {"group_id": f"exec-{tag}", "control_topic": f"executor.control.{tag}", "rest_url": sim_url,
            "api_key": key, "api_secret": secret, "account": key, "symbols": ",".join(SYMBOLS), "metrics_port": 0,
            "max_signal_age_ms": 60_000, "passive_ttl_ms": 300, "passive_window_ms": 1000, "poll_interval_ms": 50}
    return ExecutorSettings(**{**base, **overrides})


def new_engine(settings: ExecutorSettings, kafka: KafkaSettings) -> Engine:
    """An engine for one test: its control topic created, its own metrics registry, not set up yet."""
    from executor.control import ensure_control_topic

    ensure_control_topic(kafka, settings.control_topic)
    venue = BinanceVenue(settings.rest_url, settings.api_key, settings.api_secret, settings.request_timeout_ms)
    return Engine(settings, kafka, venue, ExecutorMetrics(CollectorRegistry()))


@contextmanager
def set_up_engine(settings: ExecutorSettings, kafka: KafkaSettings) -> Iterator[Engine]:
    """An engine after its start-up (reconciled, consumers assigned) whose loop never runs; closed at exit."""
    engine = new_engine(settings, kafka)
    try:
        engine._setup()
        yield engine
    finally:
        engine.close()


@contextmanager
def running_engine(settings: ExecutorSettings, kafka: KafkaSettings) -> Iterator[Engine]:
    """Run an in-process engine in a thread; stop it cleanly (commit, flush, close) at exit."""
    engine = new_engine(settings, kafka)
    errors: list[BaseException] = []

    def target() -> None:
        try:
            engine.run()
        except BaseException as exc:  # noqa: BLE001 (surface the engine's failure in the test)
            errors.append(exc)

    thread = threading.Thread(target=target, name="executor", daemon=True)
    thread.start()
    try:
        yield engine
    finally:
        engine.stop()
        thread.join(30)
    if errors:
        raise errors[0]


def start_group_at_end(kafka: KafkaSettings, group_id: str, topic: str = Topic.SIGNALS.value) -> None:
    """Commit ``group_id``'s offsets at ``topic``'s end: its executor acts only on what is produced from now on."""
    from confluent_kafka import Consumer, TopicPartition

    from infra.topics import end_offsets

    consumer = Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": group_id, "enable.auto.commit": False})
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.list_topics(topic, timeout=10).topics[topic].partitions]
        ends = end_offsets(kafka.bootstrap, partitions)
        consumer.commit(offsets=[TopicPartition(t, p, end) for (t, p), (_, end) in ends.items()], asynchronous=False)
    finally:
        consumer.close()


def start_executor_process(env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start ``tickpipe executor`` as a real subprocess (settings from ``env``), output appended to ``log``."""
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "tickpipe"), "executor", "--venue", "binance"],
        env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )


def venue_orders_of(venue: BinanceVenue, sig: dict[str, Any]) -> list[dict[str, Any]]:
    """The venue's orders of ``sig``: its attempts queried by client order id until the first unknown one."""
    out, attempt = [], 0
    while True:
        try:
            out.append(venue.query(sig["symbol"], client_order_id(sig["signal_id"], 0, attempt)))
        except NotFound:
            return out
        attempt += 1


def sim_order_posts(sim_url: str) -> int:
    """``POST /api/v3/order`` requests the simulator has answered so far (any status, any account)."""
    text = requests.get(f"{sim_url}/metrics", timeout=5).text
    return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("sim_rest_requests_total{")
                   and 'path="/api/v3/order"' in line and 'method="POST"' in line))


ZERO = Decimal(0)
