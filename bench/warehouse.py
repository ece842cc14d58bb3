"""Warehouse insert throughput: through the HTTP interface vs chdb in the same process, in one run.

The same trade rows (venue, symbol, trade_id, price Decimal(38, 18), qty Decimal(38, 18), side,
ts_event DateTime64(9)) are inserted in batches of ``--batch`` rows:

- ``http``: clickhouse-connect's HTTP client (Native, lz4 as it sends by default) to a real
  ``tickpipe warehouse`` process on a free loopback port, as the sink does;
- ``http-nocompress``: the same with ``compress=False``;
- ``in-process``: clickhouse-connect's chdb backend (``chdb:///path``) in this process, the natural
  alternative when one process may own the store: same client encoding, no HTTP, no second process;
- ``http-native``: Native bytes encoded beforehand, POSTed to the warehouse (the server alone);
- ``engine``: chdb ``INSERT ... FROM INFILE`` of the same pre-encoded Native bytes in this process
  (the engine alone, no client encoding): the ceiling, to compare ``http-native`` against.

Each mode is timed ``--repeats`` times (a fresh table each time, modes taking turns), best run
reported, with its ratios to ``in-process`` and to ``engine``. Run ``.venv/bin/python -m bench.warehouse``.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import chdb
import clickhouse_connect
import pandas as pd
import requests

from infra.broker import free_port
from warehouse.process import WarehouseProcess

COLUMNS = ["venue", "symbol", "trade_id", "price", "qty", "side", "ts_event"]
DDL = """CREATE TABLE {name} (
    venue LowCardinality(String), symbol LowCardinality(String), trade_id UInt64,
    price Decimal(38, 18), qty Decimal(38, 18), side LowCardinality(String), ts_event DateTime64(9)
) ENGINE = MergeTree ORDER BY (venue, symbol, ts_event, trade_id)"""


def trade_columns(rows: int, seed: int = 7) -> list[list[Any]]:
    """Column-oriented trades with venue-style decimals (8 decimal places)."""
    rng = random.Random(seed)
    symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT"]
    t0 = 1_764_158_400_000_000_000
    return [
        ["binance"] * rows,
        [symbols[i % len(symbols)] for i in range(rows)],
        list(range(3_900_000_000, 3_900_000_000 + rows)),
        [Decimal(f"{97000 + rng.random() * 500:.8f}") for _ in range(rows)],
        [Decimal(f"{rng.random() * 2:.8f}") for _ in range(rows)],
        [("buy", "sell")[i & 1] for i in range(rows)],
        [pd.Timestamp(t0 + i * 1_000_371, unit="ns") for i in range(rows)],
    ]


def batches(columns: list[list[Any]], size: int) -> list[list[list[Any]]]:
    rows = len(columns[0])
    return [[col[i:i + size] for col in columns] for i in range(0, rows, size)]


def time_inserts(client: Any, name: str, parts: list[list[list[Any]]]) -> float:
    client.command(DDL.format(name=name))
    started = time.perf_counter()
    for part in parts:
        client.insert(name, part, column_names=COLUMNS, column_oriented=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="rows per timed run")
    parser.add_argument("--batch", type=int, default=50_000, help="rows per insert (the sink's batch_max_rows)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per mode; the best is reported")
    args = parser.parse_args()

    columns = trade_columns(args.rows)
    parts = batches(columns, args.batch)
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-warehouse-") as tmp:
        base = Path(tmp)
        with WarehouseProcess(free_port(), base / "served", log_path=base / "warehouse.log") as proc:
            clients = {
                "http": clickhouse_connect.get_client(host="127.0.0.1", port=proc.port),
                "http-nocompress": clickhouse_connect.get_client(host="127.0.0.1", port=proc.port, compress=False),
                "in-process": clickhouse_connect.get_client(dsn=f"chdb://{base / 'inproc'}"),
            }
            blobs = encode_native(clients["in-process"], base, parts)
            session = requests.Session()
            # modes take turns in every round so that the machine's noise hits them alike
            for run in range(args.repeats):
                for mode, client in clients.items():
                    seconds = time_inserts(client, f"trades_{mode.replace('-', '_')}_{run}", parts)
                    results[mode] = min(results.get(mode, seconds), seconds)
                for mode, timer in (
                    ("http-native", lambda n: time_http_native(session, proc.url, blobs, n)),
                    ("engine", lambda n: time_engine(clients["in-process"], base, blobs, n)),
                ):
                    seconds = timer(f"trades_{mode.replace('-', '_')}_{run}")
                    results[mode] = min(results.get(mode, seconds), seconds)
                print(f"round {run + 1}/{args.repeats} done", flush=True)
            for client in clients.values():
                client.close()

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"chdb {chdb.__version__}, clickhouse-connect {clickhouse_connect.__version__}")
    print(f"rows per run: {args.rows:,}, batch: {args.batch:,} rows, best of {args.repeats}")
    print(f"{'mode':<18}{'rows/s':>14}{'vs in-process':>16}{'vs engine':>12}")
    in_process, engine = args.rows / results["in-process"], args.rows / results["engine"]
    for mode, seconds in results.items():
        rate = args.rows / seconds
        print(f"{mode:<18}{rate:>14,.0f}{rate / in_process:>15.2f}x{rate / engine:>11.2f}x")


def encode_native(client: Any, base: Path, parts: list[list[list[Any]]]) -> list[bytes]:
    """Each batch as the Native bytes clickhouse-connect would send (untimed preparation)."""
    blobs = []
    for n, part in enumerate(parts):
        staging = f"stage_{n}"
        client.command(DDL.format(name=staging))
        client.insert(staging, part, column_names=COLUMNS, column_oriented=True)
        blobs.append(client.raw_query(f"SELECT * FROM {staging} ORDER BY trade_id", fmt="Native"))
    return blobs


def time_engine(client: Any, base: Path, blobs: list[bytes], name: str) -> float:
    client.command(DDL.format(name=name))
    files = []
    for n, blob in enumerate(blobs):
        path = base / f"{name}_{n}.native"
        path.write_bytes(blob)
        files.append(path)
    started = time.perf_counter()
    for path in files:
        client.command(f"INSERT INTO {name} FROM INFILE '{path}' FORMAT Native")
    return time.perf_counter() - started


def time_http_native(session: requests.Session, url: str, blobs: list[bytes], name: str) -> float:
    session.post(url, data=DDL.format(name=name).encode(), timeout=60).raise_for_status()
    started = time.perf_counter()
    for blob in blobs:
        session.post(url, params={"query": f"INSERT INTO {name} FORMAT Native"}, data=blob, timeout=60).raise_for_status()
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
