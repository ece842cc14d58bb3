"""Sink throughput: trades from Kafka into ClickHouse through ``tickpipe sink``'s loop, vs a plain insert.

Starts a private Kafka broker and a private warehouse process, produces N trades to ``md.trades``,
then runs the sink loop (consume, decode, Arrow block, insert with dedup token, offset commit) and
times it from its first acknowledged insert to the last (the consumer-group join is excluded and
reported apart). Each sink run writes its own, identically migrated database (same materialized
views) with its own consumer group:

* the sink loop in this process, column-wise decoding (the default);
* the same with ``columnar_decode`` off (fastavro dict per message, the path before);
* ``--sinks`` separate ``tickpipe sink`` processes in one consumer group (scaling by partition;
  timed by polling ``count()``, first row to last);
* the sink into a table without materialized views (what the views cost the warehouse).

In the same run, the same trades are inserted with a plain ``clickhouse-connect``
``client.insert`` of Python rows (Decimal prices) in batches of the same size: the natural
alternative, which does no Kafka and no decoding. Prints every figure and the ratio.

    .venv/bin/python -m bench.sink --trades 300000 --sinks 2
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path

from infra.broker import free_port, private_broker
from infra.processes import stop_process
from infra.settings import KafkaSettings, SinkSettings, WarehouseSettings, environ_without_settings
from schemas.serde import AvroSerde
from schemas.topics import instrument_key
from sinks import metrics
from sinks.client import connect
from sinks.consumer import SinkLoop
from sinks.ddl import table_spec
from sinks.migrate import ensure_database, migrate
from warehouse.process import WarehouseProcess

T0 = 1_764_150_000_000_000_000


def trades(count: int) -> list[dict]:
    """Return ``count`` realistic trades over three symbols (8-decimal prices and sizes)."""
    symbols = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
    return [{"venue": "binance", "symbol": symbols[i % 3], "trade_id": i, "price": f"{64000 + i % 5000 / 100:.8f}",
             "qty": f"{(i % 99_999 + 1) / 10**6:.8f}", "side": "buy" if i % 2 else "sell",
             "ts_event": T0 + i * 1_000_000, "ts_recv": T0 + i * 1_000_000 + 700_000} for i in range(count)]


def produce(kafka: KafkaSettings, records: list[dict]) -> None:
    """Publish ``records`` to md.trades."""
    from confluent_kafka import Producer

    serde = AvroSerde()
    producer = Producer({"bootstrap.servers": kafka.bootstrap, "linger.ms": 50, "batch.num.messages": 10_000,
                         "queue.buffering.max.messages": 1_000_000})
    for i, record in enumerate(records):
        producer.produce("md.trades", serde.encode("Trade", record), key=instrument_key("binance", record["symbol"]))
        if i % 20_000 == 0:
            producer.poll(0)
    producer.flush(60)


def archive(warehouse: WarehouseSettings, database: str, views: bool = True) -> WarehouseSettings:
    """Return settings of a fresh, migrated ``database`` (``views=False``: no materialized view on md_trades)."""
    target = warehouse.model_copy(update={"database": database})
    ensure_database(connect(target, database=None), database)
    client = connect(target)
    migrate(client, database)
    if not views:
        fed = client.query("SELECT dependencies_table FROM system.tables WHERE database = {db:String} "
                           "AND name = 'md_trades'", parameters={"db": database}).result_rows[0][0]
        for name in fed:
            client.command(f"DROP VIEW {name}")
    return target


def drop(warehouse: WarehouseSettings) -> None:
    """Drop a run's database, so its parts' background merges do not slow the next run down."""
    connect(warehouse, database=None).command(f"DROP DATABASE IF EXISTS {warehouse.database} SYNC")


def run_sink(kafka: KafkaSettings, warehouse: WarehouseSettings, total: int, batch_rows: int,
             columnar: bool = True) -> tuple[float, float]:
    """Return ``(join_s, rows_per_s)`` of the sink loop archiving ``total`` trades."""
    client = connect(warehouse)
    loop = SinkLoop(kafka, SinkSettings(group_id=f"bench-{warehouse.database}", metrics_port=0,
                                        batch_max_rows=batch_rows, columnar_decode=columnar),
                    client, ["md.trades"])
    counter = metrics.ROWS.labels("md_trades")
    base = counter._value.get()
    started = time.perf_counter()
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    first_at = first_rows = None
    while counter._value.get() - base < total:
        done = counter._value.get() - base
        if first_at is None and done > 0:
            first_at, first_rows = time.perf_counter(), done
        time.sleep(0.005)
    finished = time.perf_counter()
    loop.stop()
    thread.join(60)
    assert first_at is not None and first_rows is not None
    return first_at - started, (total - first_rows) / (finished - first_at)


def run_sink_processes(kafka: KafkaSettings, warehouse: WarehouseSettings, total: int, batch_rows: int,
                       processes: int, log_dir: Path) -> tuple[float, float]:
    """Return ``(join_s, rows_per_s)`` of ``processes`` ``tickpipe sink`` processes in one group archiving ``total``."""
    env = environ_without_settings()
    env.update({"TICKPIPE_KAFKA__BOOTSTRAP": kafka.bootstrap, "TICKPIPE_WAREHOUSE__URL": warehouse.url,
                "TICKPIPE_WAREHOUSE__DATABASE": warehouse.database, "TICKPIPE_SINK__METRICS_PORT": "0",
                "TICKPIPE_SINK__TOPICS": "md.trades", "TICKPIPE_SINK__GROUP_ID": f"bench-{warehouse.database}",
                "TICKPIPE_SINK__BATCH_MAX_ROWS": str(batch_rows), "TICKPIPE_LOG_LEVEL": "WARNING"})
    script = Path(sys.executable).parent / "tickpipe"
    client = connect(warehouse)
    started = time.perf_counter()
    procs = []
    for i in range(processes):
        with open(log_dir / f"sink-{warehouse.database}-{i}.log", "ab") as log:
            procs.append(subprocess.Popen([str(script), "sink"], env=env, stdout=log, stderr=subprocess.STDOUT))
    try:
        first_at = first_rows = None
        while (done := client.query("SELECT count() FROM md_trades").result_rows[0][0]) < total:
            if first_at is None and done > 0:
                first_at, first_rows = time.perf_counter(), done
            time.sleep(0.02)
        finished = time.perf_counter()
    finally:
        for proc in procs:
            stop_process(proc, 30)
    assert first_at is not None and first_rows is not None
    return first_at - started, (total - first_rows) / (finished - first_at)


def plain_insert(warehouse: WarehouseSettings, records: list[dict], batch_rows: int) -> float:
    """Return rows/s of clickhouse-connect ``insert`` of the same trades as Python rows.

    The target is ``md_trades`` of a database migrated the same way as the sink's, so the server
    does the same work (the same materialized views fire).
    """
    client = connect(archive(warehouse, f"{warehouse.database}_plain"))
    columns = list(table_spec("md.trades").column_names)
    rows = [(r["venue"], r["symbol"], r["trade_id"], Decimal(r["price"]), Decimal(r["qty"]), r["side"],
             r["ts_event"], r["ts_recv"], "md.trades", 0, i) for i, r in enumerate(records)]
    started = time.perf_counter()
    for i in range(0, len(rows), batch_rows):
        client.insert("md_trades", rows[i:i + batch_rows], column_names=columns)
    return len(rows) / (time.perf_counter() - started)


def decode_only(records: list[dict]) -> float:
    """Return messages/s of Avro decoding alone (the sink's per-message floor in Python)."""
    serde = AvroSerde()
    payloads = [serde.encode("Trade", r) for r in records[:50_000]]
    started = time.perf_counter()
    for payload in payloads:
        serde.decode(payload)
    return len(payloads) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=300_000)
    parser.add_argument("--batch-rows", type=int, default=50_000)
    parser.add_argument("--sinks", type=int, default=2, help="sink processes for the scale-out figure (0: skip)")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="bench-sink-") as tmp,
        private_broker(Path(tmp) / "kafka") as (kafka, _),
        WarehouseProcess(free_port(), Path(tmp) / "store", log_path=Path(tmp) / "warehouse.log") as warehouse_proc,
    ):
        warehouse = WarehouseSettings(url=warehouse_proc.url, database="bench")
        records = trades(args.trades)
        print(f"producing {len(records):,} trades ...", flush=True)
        produce(kafka, records)
        print(f"decode only (AvroSerde.decode, 1 core): {decode_only(records):,.0f} msg/s", flush=True)
        target = archive(warehouse, "bench")
        join_s, sink_rate = run_sink(kafka, target, len(records), args.batch_rows)
        drop(target)
        print(f"sink, column-wise (Kafka -> Arrow -> insert -> commit): {sink_rate:,.0f} rows/s "
              f"(group join {join_s:.1f} s excluded)", flush=True)
        target = archive(warehouse, "bench_rows")
        join_s, rate = run_sink(kafka, target, len(records), args.batch_rows, columnar=False)
        drop(target)
        print(f"sink, per-message path (fastavro dict -> row -> Arrow): {rate:,.0f} rows/s "
              f"(group join {join_s:.1f} s excluded)", flush=True)
        if args.sinks:
            target = archive(warehouse, "bench_procs")
            join_s, rate = run_sink_processes(kafka, target, len(records), args.batch_rows, args.sinks, Path(tmp))
            drop(target)
            print(f"{args.sinks} sink processes, one group: {rate:,.0f} rows/s (start + join {join_s:.1f} s excluded)",
                  flush=True)
        target = archive(warehouse, "bench_bare", views=False)
        join_s, rate = run_sink(kafka, target, len(records), args.batch_rows)
        drop(target)
        print(f"sink, column-wise, into md_trades without its views: {rate:,.0f} rows/s", flush=True)
        plain_rate = plain_insert(warehouse, records, args.batch_rows)
        print(f"plain clickhouse-connect insert of the same rows: {plain_rate:,.0f} rows/s", flush=True)
        print(f"ratio sink (column-wise, 1 process) / plain insert: {sink_rate / plain_rate:.2f}")


if __name__ == "__main__":
    main()
