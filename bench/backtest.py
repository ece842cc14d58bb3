"""Backtest benchmark: archived events replayed per second through the whole backtest, against real time.

1. An archive of real market data: ``--seconds`` of the simulated exchange (seed 7, ``--rate`` book events/s,
   BTCUSDT and ETHUSDT) recorded with ``tickpipe record``, played back through the feed's parser and book
   code, and written by the sink's row path into a fresh database of a private ``tickpipe warehouse``.
2. The archive read alone (``ArchiveReplay``: the queries and the merge into event-time order).
3. The whole backtest (``run_backtest``: read + streams' book pipeline + signals + the executor's trader
   against the matching engine + the results written back), ``--repeat`` times.

Printed: archived records, the archive's recorded rate (records per second of receive time), records/s of
the read alone and of the whole backtest, how many times real time that is (aim: >= 10x), and the whole
backtest against the live pipeline's sustained rate (``--live-rate``, default: the highest step
``bench/pipeline.py`` held on this machine, docs/benchmarks.md ``## Pipeline``). That rate counts the
simulator's events, not archived records, so it is converted with this recording's own ratio of archived
records to simulator events (records per second of receive time / ``--rate``).

Run: ``.venv/bin/python -m bench.backtest [--seconds 120] [--rate 500] [--repeat 3] [--live-rate 6000]``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

from backtest.driver import run_backtest
from backtest.replay import ArchiveReplay
from infra.broker import free_port
from infra.settings import Settings, WarehouseSettings
from sim_exchange.process import start_sim_exchange
from sinks.client import connect
from sinks.migrate import ensure_database, migrate
from streams.models import DEFAULT_MODEL
from tests.integration.backtest.market import instruments, played_back, record_market
from tests.integration.sinks.known_data import write_history
from warehouse.process import WarehouseProcess

SYMBOLS = "BTCUSDT,ETHUSDT"
LIVE_RATE_SOURCE = "bench/pipeline.py, highest sustained step (docs/benchmarks.md)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="market recorded from the simulator (s)")
    parser.add_argument("--rate", type=float, default=500.0, help="the simulator's book events per second")
    parser.add_argument("--repeat", type=int, default=3, help="whole-backtest runs (the median is reported)")
    parser.add_argument("--live-rate", type=float, default=6000.0, help="the live pipeline's sustained events/s")
    args = parser.parse_args()
    print(f"machine: {platform.node()} {platform.machine()} python {platform.python_version()}")
    with tempfile.TemporaryDirectory(prefix="bench-backtest-") as tmp:
        base = Path(tmp)
        sim = start_sim_exchange(log_path=base / "sim.log", seed=7, symbols=SYMBOLS, events_per_s=args.rate)
        try:
            record_market(sim.rest_url, sim.ws_url, base / "market.jsonl", args.seconds, SYMBOLS)
            history = played_back(base / "market.jsonl")
            history["md.instruments"] = instruments(sim.rest_url, min(r["ts_recv"] for r in history["md.book"]))
        finally:
            sim.stop()
        with WarehouseProcess(free_port(), base / "warehouse", log_path=base / "warehouse.log") as warehouse:
            settings = WarehouseSettings(url=warehouse.url, database="bench_backtest")
            ensure_database(connect(settings, database=None), settings.database)
            client = connect(settings, timeout_s=600)
            migrate(client, settings.database)
            write_history(client, history)
            times = [r["ts_recv"] for t in ("md.book", "md.bbo", "md.trades", "md.health") for r in history[t]]
            start, end = min(times), max(times) + 1
            window_s = (end - start) / 1e9
            records = ArchiveReplay(client, start, end).count()
            print(f"archive: {records:,} market records over {window_s:.1f} s of receive time "
                  f"(recorded rate {records / window_s:,.0f} records/s)")

            began = time.perf_counter()
            read = sum(1 for _ in ArchiveReplay(client, start, end))
            read_s = time.perf_counter() - began
            print(f"read alone: {read:,} records in {read_s:.2f} s = {read / read_s:,.0f} records/s")

            rates = []
            for n in range(args.repeat):
                summary, _ = run_backtest(client, Settings(), f"bench-{n}", start, end, [], DEFAULT_MODEL, 7)
                rates.append(summary.events_per_s)
                print(f"backtest {n + 1}: {summary.events:,} records in {summary.wall_s:.2f} s = "
                      f"{summary.events_per_s:,.0f} records/s ({summary.archive_s / summary.wall_s:,.1f}x real time); "
                      f"signals {summary.signals}, order events {summary.orders}, fills {summary.fills}")
            median = statistics.median(rates)
            recorded = records / window_s
            speed = median / recorded
            live_records = args.live_rate * recorded / args.rate  # the live top step in archived records/s
            print(f"whole backtest, median of {args.repeat}: {median:,.0f} records/s = {speed:,.1f}x the recorded rate "
                  f"(aim >= 10x: {'met' if speed >= 10 else 'NOT met'})")
            print(f"live pipeline: {args.live_rate:,.0f} simulator events/s sustained ({LIVE_RATE_SOURCE}) = "
                  f"~{live_records:,.0f} archived records/s at this recording's {recorded / args.rate:.3f} records per "
                  f"event; the backtest runs {median / live_records:,.2f}x that")
            client.close()


if __name__ == "__main__":
    main()
