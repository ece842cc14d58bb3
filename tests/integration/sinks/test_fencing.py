"""Two sink processes, the warehouse down past the poll interval: every message archived once.

Sink A retries slowly, sink B fast. While the warehouse is down only A's partitions get new
messages: A's insert fails and is retried, A stops polling past ``max.poll.interval.ms`` and the
group gives its partitions to B, which is idle. When the warehouse is back B reads the frontier
(nothing of A's batch is there yet), archives A's range, and A's retried insert lands seconds
later: without fencing that range is archived twice (2 runs in 3 before the change, measured).
Checked on the raw tables (``md_trades``, ``dead_letters``; merges stopped, so a doubled row stays
visible) and the materialized views, not only the ``FINAL`` views.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Producer

from infra.broker import free_port
from infra.settings import KafkaSettings
from schemas.serde import AvroSerde
from tests.integration.sinks.conftest import (
    committed_total,
    open_archive,
    produce,
    sink_env,
    tickpipe_argv,
    wait_for,
)
from tests.integration.sinks.records import T0
from warehouse.process import WarehouseProcess

RAW_TABLES = ("md_trades", "dead_letters")
BAD = [b"\x00not avro " + str(i).encode() for i in range(20)]


def _trades(first: int, count: int) -> list[dict]:
    return [{"venue": "binance", "symbol": ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT")[i % 4], "trade_id": i,
             "price": f"{60000 + i % 977}.{i % 100:02d}", "qty": f"0.{i % 99_999_999 + 1:08d}",
             "side": "buy" if i % 2 else "sell", "ts_event": T0 + i * 1_000_000, "ts_recv": T0 + i * 1_000_000 + 700}
            for i in range(first, first + count)]


def _produce_to(kafka: KafkaSettings, partitions: list[int], trades: list[dict], raw: list[bytes]) -> None:
    serde = AvroSerde()
    producer = Producer({"bootstrap.servers": kafka.bootstrap, "linger.ms": 20})
    for i, trade in enumerate(trades):
        producer.produce("md.trades", serde.encode("Trade", trade), key=b"binance:" + trade["symbol"].encode(),
                         partition=partitions[i % len(partitions)])
    for i, payload in enumerate(raw):
        producer.produce("md.trades", payload, partition=partitions[i % len(partitions)])
    assert producer.flush(30) == 0


def _tails(logs: list[Path], procs: list[subprocess.Popen[bytes]]) -> str:
    # what each sink did last, for a failure message (its log is gone with the CI machine)
    return "".join(f"\n--- {log.name} (exit code {proc.poll()}):\n" + "\n".join(
        line[:400] for line in log.read_text().splitlines()[-30:]) for log, proc in zip(logs, procs, strict=False))


def _rebalances(logs: list[Path]) -> str:
    # each sink's assignments, revocations, refused fences and failed inserts, for a doubled range
    keys = ("assigned", "revoked", "refused", "insert failed", "available again", "cannot be archived", "frontier")
    return "".join(f"\n--- {log.name}:\n" + "\n".join(
        [line[:400] for line in log.read_text().splitlines() if any(k in line for k in keys)][-40:]) for log in logs)


def _owned(log: Path) -> set[int]:
    # the partitions the sink holds now: its last assignment ("md.trades/2@1500") less what was revoked
    # since (a rebalance under way has revoked everything and assigned nothing yet)
    owned: set[int] = set()
    for line in log.read_text().splitlines():
        if '"partitions assigned"' in line or '"partitions revoked"' in line:
            parts = {int(name.split("/")[1].split("@")[0]) for name in json.loads(line)["partitions"]}
            owned = owned | parts if '"partitions assigned"' in line else owned - parts
    return owned


def _settled(logs: list[Path], seconds: float) -> Callable[[], bool]:
    """Whether both sinks have held the same disjoint, non-empty halves for ``seconds``.

    A sink that joins late takes partitions from the other after the first slice is archived, so one
    look at the logs can catch a rebalance between its revocation and the new assignment.
    """
    last: tuple[frozenset[int], ...] = ()
    since = 0.0

    def check() -> bool:
        nonlocal last, since
        shares = tuple(frozenset(_owned(log)) for log in logs)
        if shares != last:
            last, since = shares, time.monotonic()
        a, b = shares
        return bool(a) and bool(b) and not a & b and len(a | b) == 4 and time.monotonic() - since >= seconds
    return check


@pytest.mark.integration
@pytest.mark.faults
@pytest.mark.timeout(240)
def test_two_sinks_and_a_warehouse_down_past_the_poll_interval_archive_every_message_once(
    private_kafka: KafkaSettings, sink_processes: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    # Arrange: a warehouse of this test alone, two sink processes in one group: A retries slowly, B fast
    warehouse = WarehouseProcess(free_port(), tmp_path / "store", log_path=tmp_path / "warehouse.log").start()
    try:
        archive = open_archive(warehouse.url)
        keep_every_part = lambda: [archive.client.command(f"SYSTEM STOP MERGES {t}") for t in RAW_TABLES]
        keep_every_part()  # a merge would collapse doubled rows in the raw tables and hide them
        # (their batches differ in size too: equal batches from equal offsets would carry equal tokens by luck)
        common = {"group_id": "fence-drill", "topics": "md.trades", "batch_max_ms": 100, "insert_timeout_s": 2,
                  "max_poll_interval_ms": 10_000}
        envs = [sink_env(private_kafka, archive.warehouse, retry_initial_ms=6_000, retry_max_ms=6_000,
                         batch_max_rows=400, consume_max_messages=400, **common),
                sink_env(private_kafka, archive.warehouse, retry_initial_ms=100, retry_max_ms=300,
                         batch_max_rows=250, consume_max_messages=250, **common)]
        logs = [tmp_path / "sink-a.log", tmp_path / "sink-b.log"]

        def wait(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
            # fails at once when a sink exited, and names what both sinks did last
            try:
                wait_for(lambda: any(p.poll() is not None for p in sink_processes) or predicate(), timeout_s, what)
                assert all(p.poll() is None for p in sink_processes), f"a sink process exited while waiting for {what}"
            except AssertionError as exc:
                raise AssertionError(f"{exc}{_tails(logs, sink_processes)}") from None

        for env, path in zip(envs, logs, strict=True):
            with open(path, "ab") as log:
                sink_processes.append(subprocess.Popen([*tickpipe_argv(), "sink"], env=env, stdout=log, stderr=log))
        produce(private_kafka, "md.trades", _trades(0, 6_000), raw=BAD[:10])
        settled = _settled(logs, 3.0)
        wait(lambda: committed_total(private_kafka, "fence-drill", "md.trades") == 6_010 and settled(), 90,
             "the first slice archived and the partitions shared by the two sinks, unchanged for 3 s")
        a_partitions = sorted(_owned(logs[0]))
        # Act: the warehouse goes down; only A's partitions get messages, so A blocks past its poll interval
        warehouse.stop()
        _produce_to(private_kafka, a_partitions, _trades(6_000, 4_000), BAD[10:])
        # B's new assignment waits for the warehouse (it reads the archive's frontier first)
        wait(lambda: "cannot read the resume frontier" in logs[1].read_text(), 60,
             f"B to take over A's partitions {a_partitions}")
        warehouse.start()
        keep_every_part()  # merges are stopped per process
        wait(lambda: committed_total(private_kafka, "fence-drill", "md.trades") == 10_020, 120,
             "catch-up after the outage")
        time.sleep(8)  # A's last retry lands meanwhile (6 s backoff)
        produce(private_kafka, "md.trades", _trades(10_000, 3_000))
        wait(lambda: committed_total(private_kafka, "fence-drill", "md.trades") == 13_020, 60,
             "the third slice archived after the rebalance")
        for proc in sink_processes:
            proc.terminate()
        assert [proc.wait(30) for proc in sink_processes] == [0, 0]
        # Assert: no table holds a message twice or misses one
        total = 13_000
        doubled = archive.client.query(
            "SELECT _partition, min(_offset), max(_offset), count() FROM (SELECT _partition, _offset FROM md_trades "
            "GROUP BY _partition, _offset HAVING count() > 1) GROUP BY _partition ORDER BY _partition").result_rows
        assert archive.scalar("SELECT count() FROM md_trades") == total, (
            f"a range was archived twice (raw table): (partition, first, last, offsets) {doubled}; "
            f"sink A had {a_partitions}{_rebalances(logs)}")
        assert archive.scalar("SELECT uniqExact(_partition, _offset) FROM md_trades") == total
        assert archive.scalar("SELECT uniqExact(trade_id) FROM md_trades") == total
        assert archive.scalar("SELECT count() FROM dead_letters") == len(BAD)
        assert archive.scalar("SELECT uniqExact(partition, offset) FROM dead_letters") == len(BAD)
        assert archive.scalar("SELECT sum(trades) FROM ohlcv_1m") == total
        assert archive.scalar("SELECT sum(records) FROM hop_latency_1m WHERE source = 'md_trades'") == total
    finally:
        warehouse.stop()
