"""Test harness for the streams worker: fresh broker, fixed input, worker subprocesses, output reader.

The expected outputs come from running the pure pipelines in-process over the same input with the
offsets the broker assigned, so every Kafka run is compared with an independent reference.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import requests
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from infra.broker import free_port, private_broker
from infra.processes import stop_process
from infra.settings import KafkaSettings, environ_without_settings
from schemas.serde import AvroSerde
from schemas.topics import Topic
from streams.intake import Accepted, check_input
from streams.models.base import InputRef
from streams.models.ofi_microprice import OfiMicropriceModel
from streams.pipelines.book import BookConfig, BookInstrument
from streams.pipelines.trades import TradeInstrument
from streams.synthetic import MarketEvent, market

MS = 1_000_000
LATENESS_MS = 2000
FLOW_BUCKET_MS = 100
TARGET_QTY = "0.001"
OUTPUTS = [Topic.FEATURES_BOOK, Topic.FEATURES_FLOW, Topic.BARS_1S, Topic.BARS_1M, Topic.SIGNALS, Topic.DLQ]
TICKPIPE = str(Path(sys.executable).parent / "tickpipe")
ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Produced:
    """One input message as it landed: where, and what (None value bytes = deliberately bad)."""

    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes
    event: MarketEvent | None


@dataclass
class Outputs:
    """Outputs reduced to what a correct run must reproduce exactly."""

    book: dict[tuple, dict] = field(default_factory=dict)
    flow: dict[tuple, dict] = field(default_factory=dict)
    bars: dict[tuple, dict] = field(default_factory=dict)  # final version per (symbol, interval, start)
    signals: dict[str, dict] = field(default_factory=dict)
    dlq: set[tuple] = field(default_factory=set)
    stamps_ok: bool = True


def fixed_input() -> list[tuple[Topic, bytes, bytes, MarketEvent | None]]:
    """The fixed input: synthetic market data for 4 symbols plus a few bad records."""
    serde = AvroSerde()
    items: list[tuple[Topic, bytes, bytes, MarketEvent | None]] = []
    # one symbol per partition (CRC-32 of the key mod 4: ETH 0, ADA 1, BNB 2, BTC 3)
    events = list(market(["BTCUSDT", "ETHUSDT", "BNBUSDT", "ADAUSDT"], 1000, seed=5, late_ns=3_000_000_000))
    for i, ev in enumerate(events):
        items.append((ev.topic, ev.key, serde.encode(ev.record_name, ev.record), ev))
        if i == 500:
            items.append((Topic.TRADES, b"binance:BTCUSDT", b"not avro at all", None))
        if i == 700:
            # a trade whose price is not a usable decimal
            last_trade = next(e for e in reversed(events[:i]) if e.topic == Topic.TRADES)
            items.append((Topic.TRADES, last_trade.key, serde.encode("Trade", {**last_trade.record, "price": "NaN"}), None))
        if i == 900:
            # a trade of another instrument under BTC's key
            last_trade = next(e for e in reversed(events[:i]) if e.topic == Topic.TRADES)
            stray = {**last_trade.record, "symbol": "XRPUSDT"}
            items.append((Topic.TRADES, b"binance:BTCUSDT", serde.encode("Trade", stray), None))
    # an old book update replayed by a confused producer: out of order
    first_delta = next(ev for ev in events if ev.topic == Topic.BOOK and not ev.record["snapshot"])
    items.append((Topic.BOOK, first_delta.key, serde.encode("BookDelta", first_delta.record), None))
    return items


def produce(kafka: KafkaSettings, items: list) -> list[Produced]:
    """Publish ``items`` in order with the default (CRC-32) partitioner; return where each landed."""
    # idempotent: a batch librdkafka retries under load is appended once (a copy would change the outputs)
    producer = Producer({"bootstrap.servers": kafka.bootstrap, "linger.ms": 5, "enable.idempotence": True})
    landed: list[Produced | None] = [None] * len(items)

    def report(i: int):
        def cb(err, msg) -> None:
            assert err is None, err
            _, key, value, ev = items[i]
            landed[i] = Produced(msg.topic(), msg.partition(), msg.offset(), key, value, ev)
        return cb

    for i, (topic, key, value, _) in enumerate(items):
        producer.produce(topic.value, value, key, on_delivery=report(i))
        producer.poll(0)
    assert producer.flush(30) == 0
    return [p for p in landed if p is not None]


def reference(landed: list[Produced], signal_cooldown_ms: int) -> Outputs:
    """Run the pure pipelines in offset order per partition (the order a worker sees)."""
    serde = AvroSerde()
    cfg = BookConfig(
        OfiMicropriceModel(cooldown_ns=signal_cooldown_ms * MS), features_interval_ns=0,
        target_qty=TARGET_QTY, signal_ttl_ns=2000 * MS,
    )
    books: dict[bytes, BookInstrument] = defaultdict(BookInstrument)
    trades: dict[bytes, TradeInstrument] = defaultdict(lambda: TradeInstrument(LATENESS_MS * MS, FLOW_BUCKET_MS * MS))
    out = Outputs()
    for p in sorted(landed, key=lambda p: (p.topic, p.partition, p.offset)):
        checked = check_input(serde, p.key, p.value, "Trade" if p.topic == Topic.TRADES else "BookDelta", frozenset())
        if not isinstance(checked, Accepted):
            out.dlq.add((p.topic, p.partition, p.offset))
            continue
        record = checked.record
        if p.topic == Topic.TRADES:
            res = trades[p.key].on_trade(record)
            if res.errors:
                out.dlq.add((p.topic, p.partition, p.offset))
            if res.flow:
                out.flow[(record["symbol"], res.flow["last_trade_id"])] = res.flow
            for label, bar in res.bars:
                out.bars[(record["symbol"], label, bar["start"])] = bar
        else:
            res = books[p.key].on_delta(record, InputRef(p.topic, p.partition, p.offset), cfg)
            if res.error:
                out.dlq.add((p.topic, p.partition, p.offset))
            if res.features:
                out.book[(record["symbol"], res.features["update_id"])] = res.features
            if res.signal:
                out.signals[res.signal["signal_id"]] = {k: v for k, v in res.signal.items() if k != "ts_emit"}
    return out


@contextmanager
def fresh_broker(tmp: Path) -> Iterator[KafkaSettings]:
    """A broker of our own with every topic created (4 partitions); stopped by pid."""
    with private_broker(tmp / f"kafka-{time.time_ns()}") as (kafka, _):
        yield kafka


def start_worker(
    kafka: KafkaSettings, app_id: str, tmp: Path, name: str, cooldown_ms: int, web_port: int = 0,
    extra_env: dict[str, str] | None = None, argv: list[str] | None = None,
) -> subprocess.Popen:
    """Start ``tickpipe streams worker`` (or ``argv``) as a real subprocess (its /metrics are saved when it is stopped)."""
    web_port = web_port or free_port()
    env = environ_without_settings()
    env.update({
        "TICKPIPE_KAFKA__BOOTSTRAP": kafka.bootstrap,
        "TICKPIPE_KAFKA__PARTITIONS": "4",
        "TICKPIPE_STREAMS__APP_ID": app_id,
        "TICKPIPE_STREAMS__WEB_PORT": str(web_port),
        "TICKPIPE_STREAMS__DATA_DIR": str(tmp / f"data-{name}"),
        "TICKPIPE_STREAMS__BAR_ALLOWED_LATENESS_MS": str(LATENESS_MS),
        "TICKPIPE_STREAMS__FLOW_BUCKET_MS": str(FLOW_BUCKET_MS),
        "TICKPIPE_STREAMS__SIGNAL_COOLDOWN_MS": str(cooldown_ms),
        "TICKPIPE_STREAMS__SIGNAL_TARGET_QTY": TARGET_QTY,
        "TICKPIPE_STREAMS__BATCH_SIZE": "200",
        **(extra_env or {}),
    })
    log = open(tmp / f"worker-{name}.log", "ab")  # noqa: SIM115 (owned by the child)
    proc = subprocess.Popen(argv or [TICKPIPE, "streams", "worker"], env=env, stdout=log, stderr=subprocess.STDOUT,
                            cwd=ROOT if argv else None)
    proc.metrics_url, proc.metrics_path = f"http://127.0.0.1:{web_port}/metrics", tmp / f"worker-{name}.metrics"
    return proc


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """Stop one process we started, by pid; a worker's last /metrics go next to its log, for failures."""
    if proc.poll() is None and hasattr(proc, "metrics_url"):
        with suppress(requests.RequestException):
            proc.metrics_path.write_text(requests.get(proc.metrics_url, timeout=2).text)
    stop_process(proc, timeout_s=20, sig=sig)


class OutputReader:
    """Reads every output topic from the beginning without joining a group (assign, not subscribe)."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self.serde = AvroSerde()
        self.consumer = Consumer({
            "bootstrap.servers": kafka.bootstrap, "group.id": "streams-test-reader", "enable.auto.commit": False,
        })
        self.consumer.assign([TopicPartition(t.value, p, OFFSET_BEGINNING) for t in OUTPUTS for p in range(4)])
        self.out = Outputs()
        self.raw_counts: dict[str, int] = defaultdict(int)
        self.signal_latencies_ns: list[int] = []

    def poll(self, seconds: float) -> None:
        """Read for up to ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for msg in self.consumer.consume(1000, timeout=0.2):
                if msg.error():
                    continue
                self._take(msg.topic(), msg.value())

    def _take(self, topic: str, value: bytes) -> None:
        self.raw_counts[topic] += 1
        rec = self.serde.decode(value)[1]
        if topic == Topic.DLQ:
            self.out.dlq.add((rec["source_topic"], rec["partition"], rec["offset"]))
            return
        if not rec["ts_emit"] >= rec["ts_recv"]:
            self.out.stamps_ok = False
        if topic == Topic.SIGNALS:
            # the hop stamps: the broker appended the md input (ms resolution) before the worker took it,
            # and the worker took it before it emitted the signal
            acked, taken = rec.pop("ts_md_ack"), rec.pop("ts_in")
            if acked is None or taken is None or not acked - 1_000_000 <= taken <= rec["ts_emit"]:
                self.out.stamps_ok = False
        rec = {k: v for k, v in rec.items() if k != "ts_emit"}
        if topic == Topic.FEATURES_BOOK:
            self.out.book[(rec["symbol"], rec["update_id"])] = rec
        elif topic == Topic.FEATURES_FLOW:
            self.out.flow[(rec["symbol"], rec["last_trade_id"])] = rec
        elif topic == Topic.SIGNALS:
            self.out.signals[rec["signal_id"]] = rec
        else:
            key = (rec["symbol"], rec["interval"], rec["start"])
            if rec["version"] >= self.out.bars.get(key, {"version": -1})["version"]:
                self.out.bars[key] = rec

    def wait_for(self, expected: Outputs, timeout_s: float) -> None:
        """Read until every expected output key is present (or the timeout passes)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.poll(0.5)
            if complete(self.out, expected):
                self.poll(1.0)  # let stragglers (duplicates) arrive
                return

    def close(self) -> None:
        """Close the consumer."""
        self.consumer.close()


def complete(got: Outputs, expected: Outputs) -> bool:
    """True once every expected key (and final bar version) is there."""
    return (
        got.book.keys() >= expected.book.keys() and got.flow.keys() >= expected.flow.keys()
        and got.signals.keys() >= expected.signals.keys() and got.dlq >= expected.dlq
        and all(got.bars.get(k, {}).get("version", -1) >= v["version"] for k, v in expected.bars.items())
    )


def same(a: Outputs, b: Outputs) -> None:
    """Assert two runs' outputs are equal, naming the keys that are missing, extra or different."""
    problems = []
    for name in ("signals", "bars", "flow", "book"):
        got, want = getattr(a, name), getattr(b, name)
        missing, extra = sorted(want.keys() - got.keys()), sorted(got.keys() - want.keys())
        differ = sorted(k for k in got.keys() & want.keys() if got[k] != want[k])
        if missing or extra or differ:
            first = f"; first differing: got {got[differ[0]]} want {want[differ[0]]}" if differ else ""
            problems.append(f"{name}: {len(missing)} missing {missing[:5]}, {len(extra)} extra {extra[:5]}, "
                            f"{len(differ)} differ {differ[:5]}{first}")
    if a.dlq != b.dlq:
        problems.append(f"dlq: missing {sorted(b.dlq - a.dlq)[:5]}, extra {sorted(a.dlq - b.dlq)[:5]}")
    assert not problems, "\n".join(problems)
