"""Streams benchmark: input events/s through every agent, md-to-signal latency, one worker vs two.

Two phases, each on a broker of its own (Apache Kafka, fresh data directory) so offsets and groups start clean:

1. **Backlog throughput.** ``--events`` synthetic book/trade events (4 symbols, one per partition)
   are published first; then ``tickpipe streams worker`` subprocesses start and the clock runs from the
   first output to the moment every expected feature record is out. Events/s = inputs / that time.
   Done with one worker and with two (same app id, four partitions).
2. **Latency at a steady rate.** Events are published at ``--rate`` per second with ``ts_recv``
   stamped at publish time; each output carries ``ts_emit``, so ``ts_emit - ts_recv`` is the
   md-to-output latency of the stage, reported as p50/p99 for signals and for book features.

Run: ``.venv/bin/python -m bench.streams [--events 40000] [--rate 1000] [--seconds 20]
[--within 20 200] [--guarantees at_least_once exactly_once]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from infra.broker import private_broker
from infra.settings import KafkaSettings, environ_without_settings
from schemas.serde import AvroSerde
from schemas.topics import Topic
from streams.synthetic import market

SYMBOLS = ["BTCUSDT", "ETHUSDT", "BNBUSDT", "ADAUSDT"]  # one per partition of four
OUTPUTS = [Topic.FEATURES_BOOK, Topic.FEATURES_FLOW, Topic.SIGNALS]
TICKPIPE = str(Path(sys.executable).parent / "tickpipe")


@contextmanager
def broker(tmp: Path) -> Iterator[KafkaSettings]:
    with private_broker(tmp / f"kafka-{time.time_ns()}") as (kafka, _):
        yield kafka


def start_workers(
    kafka: KafkaSettings, n: int, tmp: Path, tag: str, within_ms: int, guarantee: str = "at_least_once"
) -> list[subprocess.Popen]:
    env = environ_without_settings()
    env.update({
        "TICKPIPE_KAFKA__BOOTSTRAP": kafka.bootstrap, "TICKPIPE_STREAMS__APP_ID": f"bench-{tag}",
        "TICKPIPE_STREAMS__WEB_PORT": "0", "TICKPIPE_LOG_LEVEL": "WARNING",
        "TICKPIPE_STREAMS__BATCH_WITHIN_MS": str(within_ms),
        "TICKPIPE_STREAMS__PROCESSING_GUARANTEE": guarantee,
    })
    procs = []
    for i in range(n):
        env["TICKPIPE_STREAMS__DATA_DIR"] = str(tmp / f"data-{tag}-{i}")
        log = open(tmp / f"worker-{tag}-{i}.log", "ab")  # noqa: SIM115 (owned by the child)
        procs.append(subprocess.Popen([TICKPIPE, "streams", "worker"], env=env, stdout=log, stderr=subprocess.STDOUT))
    return procs


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def reader(kafka: KafkaSettings) -> Consumer:
    c = Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": "bench-reader", "enable.auto.commit": False})
    c.assign([TopicPartition(t.value, p, OFFSET_BEGINNING) for t in OUTPUTS for p in range(4)])
    return c


def new_producer(kafka: KafkaSettings, rate: float | None) -> Producer:
    # idempotent: a batch retried under load must not be appended twice (duplicates would be dead-lettered)
    return Producer({"bootstrap.servers": kafka.bootstrap, "linger.ms": 1 if rate else 20, "enable.idempotence": True})


def publish(kafka: KafkaSettings, events: list, rate: float | None, producer: Producer | None = None) -> None:
    serde = AvroSerde()
    producer = producer or new_producer(kafka, rate)
    start = time.perf_counter()
    for i, ev in enumerate(events):
        if rate:
            wait = start + i / rate - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            ev.record["ts_recv"] = time.time_ns()
        producer.produce(ev.topic.value, serde.encode(ev.record_name, ev.record), ev.key)
        producer.poll(0)
    producer.flush(60)


def expected_outputs(events: list) -> int:
    """Feature records the input yields: one per trade and one per book update (no throttle, no gaps)."""
    return len(events)


def backlog_throughput(
    n_events: int, workers: int, tmp: Path, within_ms: int, guarantee: str
) -> tuple[float, float, float]:
    """Input events/s from the first output to the last; also the seconds before the first output and the
    workers' shutdown (SIGTERM to exit) after the last."""
    events = list(market(SYMBOLS, n_events // len(SYMBOLS), seed=3))
    with broker(tmp) as kafka:
        publish(kafka, events, None)
        c = reader(kafka)
        t_start = time.perf_counter()
        procs = start_workers(kafka, workers, tmp, f"tp{workers}-{within_ms}-{guarantee}", within_ms, guarantee)
        first = last = None
        got = 0
        want = expected_outputs(events) - len(SYMBOLS)  # snapshots produce features too; minus slack
        deadline = time.perf_counter() + 300
        try:
            while got < want and time.perf_counter() < deadline:
                for m in c.consume(2000, timeout=0.2):
                    if m.error() or m.topic() == Topic.SIGNALS:
                        continue
                    first = first or time.perf_counter()
                    got += 1
                last = time.perf_counter()
        finally:
            stop(procs)  # the workers' shutdown is not part of the figure (until 2026-12-06 it was)
            c.close()
        stopped = time.perf_counter()
        assert first is not None and last is not None and got >= want, f"only {got}/{want} outputs"
        return len(events) / (last - first), first - t_start, stopped - last


def latency(rate: float, seconds: float, tmp: Path, within_ms: int, guarantee: str) -> dict[str, list[int]]:
    events = list(market(SYMBOLS, int(rate * seconds) // len(SYMBOLS), seed=4))
    serde = AvroSerde()
    lat: dict[str, list[int]] = {Topic.SIGNALS.value: [], Topic.FEATURES_BOOK.value: []}
    with broker(tmp) as kafka:
        procs = start_workers(kafka, 1, tmp, f"lat-{within_ms}-{guarantee}", within_ms, guarantee)
        c = reader(kafka)
        # created now: an idempotent producer's first records wait for its producer id (~0.5 s measured),
        # which would count as the pipeline's latency
        producer = new_producer(kafka, rate)
        try:
            time.sleep(8)  # join + recovery before the clock matters
            publish(kafka, events, rate, producer)
            deadline = time.perf_counter() + 10
            while time.perf_counter() < deadline:
                for m in c.consume(2000, timeout=0.2):
                    if m.error() or m.topic() not in lat:
                        continue
                    rec = serde.decode(m.value())[1]
                    lat[m.topic()].append(rec["ts_emit"] - rec["ts_recv"])
        finally:
            stop(procs)
            c.close()
    return lat


def pct(values: list[int], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] / 1e6 if len(values) > 1 else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=40_000)
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--within", type=int, nargs="+", default=[20, 200], help="batch_within_ms values to compare")
    ap.add_argument("--guarantees", nargs="+", default=["at_least_once"], choices=["at_least_once", "exactly_once"],
                    help="Faust processing guarantees to compare (exactly_once: Kafka transactions)")
    args = ap.parse_args()
    print(f"machine: {platform.machine()} {os.cpu_count()} cpus, python {platform.python_version()}")
    with tempfile.TemporaryDirectory(prefix="bench-streams-") as d:
        tmp = Path(d)
        for guarantee in args.guarantees:
            for within in args.within:
                tag = f"[{guarantee}, within {within} ms]"
                one, startup1, shutdown1 = backlog_throughput(args.events, 1, tmp, within, guarantee)
                print(f"{tag} backlog {args.events} events, 1 worker : {one:,.0f} events/s "
                      f"(first output {startup1:.1f} s after start, shutdown {shutdown1:.1f} s after the last)", flush=True)
                two, startup2, shutdown2 = backlog_throughput(args.events, 2, tmp, within, guarantee)
                print(f"{tag} backlog {args.events} events, 2 workers: {two:,.0f} events/s "
                      f"(first output {startup2:.1f} s after start, shutdown {shutdown2:.1f} s after the last); "
                      f"two/one = {two / one:.2f}", flush=True)
                lat = latency(args.rate, args.seconds, tmp, within, guarantee)
                for topic, values in lat.items():
                    print(f"{tag} md -> {topic} latency at {args.rate:.0f} events/s: n={len(values)} "
                          f"p50={pct(values, 50):.2f} ms p99={pct(values, 99):.2f} ms", flush=True)

if __name__ == "__main__":
    main()
