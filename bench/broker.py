"""Local broker benchmark: produce -> consume latency under a constant load, and the broker's throughput.

A private Apache Kafka (``infra.broker.private_broker``, fresh data directory), then two phases:

1. **Tailing at a constant rate**, the load under which the old local broker (tansu 0.6, memory
   storage) degraded: one confluent-kafka producer at ``--rate`` msg/s (``--size``-byte values,
   4 partitions, acks=all, idempotent, lz4, linger 1 ms) and one consumer in a group tailing the
   topic, for ``--seconds``. Per ``--window-s``: produce -> consume latency p50 / p99 (the producer
   stamps the send time into the value), messages consumed, the broker's CPU share and resident
   memory. The first and the last window side by side show whether the broker slows with its log.
2. **Throughput**: ``--count`` messages produced as fast as the producer goes (same settings,
   linger 5 ms) until all are acknowledged, then read back by one consumer: msgs/s each way.

    .venv/bin/python -m bench.broker [--rate 1500] [--size 100] [--seconds 240] [--window-s 30] [--count 500000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import struct
import tempfile
import threading
import time
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition

from bench.pipeline import _cpu_ticks, _rss_mb, machine
from infra.broker import private_broker

CLK_TCK = os.sysconf("SC_CLK_TCK")
TOPIC = "dlq"  # any topic of 4 partitions; the broker is private to the bench
PRODUCER = {"acks": "all", "enable.idempotence": True, "compression.type": "lz4"}


def _pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else float("nan")


def tail_at_rate(bootstrap: str, pid: int, rate: float, size: int, seconds: float, window_s: float) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 1, **PRODUCER})
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-tail", "auto.offset.reset": "latest",
                         "enable.auto.commit": True, "fetch.wait.max.ms": 100})
    consumer.subscribe([TOPIC])
    while not consumer.assignment():  # join first: the clock starts with a tailing consumer
        consumer.poll(0.2)
    stop = threading.Event()
    pad = b"x" * max(0, size - 8)

    def produce() -> None:
        interval, next_at, i = 1.0 / rate, time.perf_counter(), 0
        while not stop.is_set():
            now = time.perf_counter()
            if now < next_at:
                time.sleep(min(next_at - now, 0.001))
                continue
            producer.produce(TOPIC, struct.pack(">q", time.time_ns()) + pad, key=str(i % 64).encode())
            producer.poll(0)
            next_at += interval
            i += 1
        producer.flush(30)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    print(f"tailing at {rate:,.0f} msg/s of {size} B for {seconds:.0f} s", flush=True)
    print(" window | consumed | p50 ms | p99 ms | broker CPU % | broker RSS MB", flush=True)
    started = time.monotonic()
    window = 0
    while time.monotonic() - started < seconds:
        lat: list[float] = []
        ticks0, t0 = _cpu_ticks(pid), time.monotonic()
        while time.monotonic() - t0 < window_s:
            # poll, not consume(n, timeout): a batch call waits for n messages or the whole timeout
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                lat.append((time.time_ns() - struct.unpack(">q", msg.value()[:8])[0]) / 1e6)
        cpu = 100 * (_cpu_ticks(pid) - ticks0) / CLK_TCK / (time.monotonic() - t0)
        window += 1
        print(f" {window:>6} | {len(lat):>8} | {_pct(lat, 50):6.1f} | {_pct(lat, 99):6.1f} | {cpu:12.1f} | "
              f"{_rss_mb(pid):13.0f}", flush=True)
    stop.set()
    thread.join()
    consumer.close()


def throughput(bootstrap: str, count: int, size: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "batch.num.messages": 10_000,
                         "queue.buffering.max.messages": 1_000_000, **PRODUCER})
    value = os.urandom(size // 2).hex().encode()[:size]
    started = time.perf_counter()
    for i in range(count):
        while True:
            try:
                producer.produce("md.trades", value, key=str(i % 64).encode())
                break
            except BufferError:
                producer.poll(0.01)
        if i % 10_000 == 0:
            producer.poll(0)
    assert producer.flush(120) == 0
    produced_s = time.perf_counter() - started
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-read", "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition("md.trades", p) for p in range(4)])
    got, started = 0, time.perf_counter()
    while got < count and time.perf_counter() - started < 120:
        got += sum(1 for m in consumer.consume(10_000, 0.5) if m.error() is None)
    consumed_s = time.perf_counter() - started
    consumer.close()
    print(f"throughput: {count:,} x {size} B produced and acknowledged in {produced_s:.1f} s = "
          f"{count / produced_s:,.0f} msg/s; read back {got:,} in {consumed_s:.1f} s = {got / consumed_s:,.0f} msg/s",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=1500.0)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=240.0)
    parser.add_argument("--window-s", type=float, default=30.0)
    parser.add_argument("--count", type=int, default=500_000)
    args = parser.parse_args()
    print(f"machine: {machine()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-broker-") as tmp, private_broker(Path(tmp) / "kafka") as (kafka, proc):
        tail_at_rate(kafka.bootstrap, proc.pid, args.rate, args.size, args.seconds, args.window_s)
        throughput(kafka.bootstrap, args.count, args.size)
    print(f"machine: {machine()}", flush=True)


if __name__ == "__main__":
    main()
