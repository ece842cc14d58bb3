"""Sink throughput: trades from Kafka into ClickHouse through ``tickpipe sink``'s loop, vs a plain insert.

Starts a private tansu broker and a private warehouse process, produces N trades to ``md.trades``,
then runs the sink loop (consume, Avro decode, row mapping, Arrow block, insert with dedup token,
offset commit) and times it from its first acknowledged insert to the last (the consumer-group
join is excluded and reported apart). In the same run, the same trades are inserted with a plain
``clickhouse-connect`` ``client.insert`` of Python rows (Decimal prices) in batches of the same
size into an identically migrated database (same materialized views): the natural alternative,
which does no Kafka and no decoding. Prints both and the ratio.

    .venv/bin/python -m bench.sink --trades 300000
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path

from infra.broker import free_port, private_broker
from infra.settings import KafkaSettings, SinkSettings, WarehouseSettings
from infra.warehouse.process import WarehouseProcess
from schemas.serde import AvroSerde
from schemas.topics import instrument_key
from sinks import metrics
from sinks.client import connect
from sinks.consumer import SinkLoop
from sinks.ddl import table_spec
from sinks.migrate import ensure_database, migrate

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


def run_sink(kafka: KafkaSettings, warehouse: WarehouseSettings, total: int, batch_rows: int) -> tuple[float, float]:
    """Return ``(join_s, rows_per_s)`` of the sink loop archiving ``total`` trades."""
    client = connect(warehouse)
    loop = SinkLoop(kafka, SinkSettings(group_id="bench-sink", metrics_port=0, batch_max_rows=batch_rows),
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


def plain_insert(warehouse: WarehouseSettings, records: list[dict], batch_rows: int) -> float:
    """Return rows/s of clickhouse-connect ``insert`` of the same trades as Python rows.

    The target is ``md_trades`` of a second database migrated the same way, so the server does the
    same work (the same materialized views fire) as for the sink.
    """
    plain = warehouse.model_copy(update={"database": f"{warehouse.database}_plain"})
    ensure_database(connect(plain, database=None), plain.database)
    client = connect(plain)
    migrate(client, plain.database)
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
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="bench-sink-") as tmp,
        private_broker(Path(tmp) / "tansu.log") as (kafka, _),
        WarehouseProcess(free_port(), Path(tmp) / "store", log_path=Path(tmp) / "warehouse.log") as warehouse_proc,
    ):
        warehouse = WarehouseSettings(url=warehouse_proc.url, database="bench")
        ensure_database(connect(warehouse, database=None), warehouse.database)
        migrate(connect(warehouse), warehouse.database)
        records = trades(args.trades)
        print(f"producing {len(records):,} trades ...", flush=True)
        produce(kafka, records)
        print(f"decode only (AvroSerde.decode, 1 core): {decode_only(records):,.0f} msg/s", flush=True)
        join_s, sink_rate = run_sink(kafka, warehouse, len(records), args.batch_rows)
        print(f"sink (Kafka -> decode -> rows -> Arrow -> insert -> commit): {sink_rate:,.0f} rows/s "
              f"(group join {join_s:.1f} s excluded)", flush=True)
        plain_rate = plain_insert(warehouse, records, args.batch_rows)
        print(f"plain clickhouse-connect insert of the same rows: {plain_rate:,.0f} rows/s", flush=True)
        print(f"ratio sink / plain insert: {sink_rate / plain_rate:.2f}")

if __name__ == "__main__":
    main()
