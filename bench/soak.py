"""Soak benchmark: does the local stack degrade with uptime? The whole stack at a constant rate.

One ``tickpipe up`` of every service (private ``TICKPIPE_HOME``, free ports), the simulated
exchange's flow held at ``--rate`` events/s for ``--minutes``. Every wall-clock minute: the broker's CPU share
(its process's clock ticks over the minute) and resident memory, the CPU share of the whole stack,
and the p50 / p99 latency of each hop in that minute, read from the archive's ``hop_latency_1m``
view (venue event -> feed receive on md_trades; feed receive -> emit on features_book and signals). The verdict compares the median of the first five minutes with
the median of the last five, per figure: the aim is "within 20 %".

    .venv/bin/python -m bench.soak [--rate 200] [--minutes 30]

Nothing else should run on the machine meanwhile: the figures would measure that load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import clickhouse_connect
import requests

from bench._local_stack import LocalStack, local_stack
from bench.pipeline import _cpu_ticks, _machine_ticks, _rss_mb, machine
from infra.processes import descendants

CLK_TCK = os.sysconf("SC_CLK_TCK")
# (hop, source) kept per minute in hop_latency_1m. md_bbo and fills are left out: a bookTicker has no
# venue time (its ts_event is the receive time) and a fill is stamped when it is emitted, so both read 0.
HOPS = [("event->recv", "md_trades"), ("recv->emit", "features_book"), ("recv->emit", "signals")]
WINDOW = 5  # minutes compared at the start and at the end
AIM = 0.20


@dataclass
class Minute:
    """One sampled interval."""

    index: int
    broker_cpu: float  # % of one core
    broker_rss_mb: float
    stack_cpu: float  # % of one core, every service
    machine_busy: float  # % of all cores
    venue_trades: int
    bucket: int  # the minute's start, epoch s
    latency_ms: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)  # hop -> (p50, p99)


def _venue_trades(sim: str) -> int:
    return sum(requests.get(f"{sim}/_sim/health", timeout=10).json()["trades"].values())


def _tree_ticks(pids: set[int]) -> int:
    return sum(_cpu_ticks(p) for p in pids)


def _latencies(sql: clickhouse_connect.driver.Client, bucket_start: int) -> dict[tuple[str, str], tuple[float, float]]:
    rows = sql.query(
        "SELECT hop, source, quantilesTDigestMerge(0.5, 0.99)(quantiles) FROM hop_latency_1m_state"
        f" WHERE bucket = toDateTime({bucket_start}, 'UTC') GROUP BY hop, source"
    ).result_rows
    return {(hop, source): (q[0] / 1e6, q[1] / 1e6) for hop, source, q in rows}


def soak(stack: LocalStack, minutes: int) -> list[Minute]:
    """Sample the stack over ``minutes`` wall-clock minutes (the archive buckets latencies by minute)."""
    programs = stack.programs()
    broker = programs["broker"]
    host, port = stack.url("warehouse").removeprefix("http://").split(":")
    sql = clickhouse_connect.get_client(host=host, port=int(port), database="tickpipe", compress=False)
    sim = stack.url("sim-exchange")
    time.sleep(60 - time.time() % 60)  # start on a minute boundary
    out: list[Minute] = []
    print_header()
    for i in range(minutes):
        bucket = int(time.time()) // 60 * 60
        all_pids = {p for pid in stack.programs().values() for p in {pid} | descendants(pid)}
        b0, s0, m0, t0, trades0 = _cpu_ticks(broker), _tree_ticks(all_pids), _machine_ticks(), time.monotonic(), _venue_trades(sim)
        time.sleep(max(1.0, bucket + 60 - time.time()))
        dt = time.monotonic() - t0
        b1, s1, m1 = _cpu_ticks(broker), _tree_ticks(all_pids), _machine_ticks()
        out.append(Minute(
            i + 1, 100 * (b1 - b0) / CLK_TCK / dt, _rss_mb(broker), 100 * (s1 - s0) / CLK_TCK / dt,
            100 * (m1[0] - m0[0]) / max(1, m1[1] - m0[1]), _venue_trades(sim) - trades0, bucket,
        ))
        if i > 0:  # the previous minute is complete and archived by now
            out[i - 1].latency_ms = _latencies(sql, out[i - 1].bucket)
            print_minute(out[i - 1])
        if stack.programs().get("broker") != broker:
            print("  the broker was restarted during the soak", flush=True)
            broker = stack.programs()["broker"]
    time.sleep(5)
    out[-1].latency_ms = _latencies(sql, out[-1].bucket)
    print_minute(out[-1])
    return out


def _cells(m: Minute) -> list[str]:
    cells = [f"{m.index:>3}", f"{m.broker_cpu:6.1f}", f"{m.broker_rss_mb:7.0f}", f"{m.stack_cpu:6.1f}",
             f"{m.machine_busy:5.1f}", f"{m.venue_trades:>7}"]
    for hop in HOPS:
        p50, p99 = m.latency_ms.get(hop, (float("nan"), float("nan")))
        cells.append(f"{p50:7.1f}/{p99:<8.1f}")
    return cells


def print_header() -> None:
    names = ["min", "brk%", "brkRSS", "stack%", "mach%", "trades"] + [f"{h}:{s} p50/p99 ms" for h, s in HOPS]
    print(" | ".join(names), flush=True)


def print_minute(m: Minute) -> None:
    print(" | ".join(_cells(m)), flush=True)


def verdict(minutes: list[Minute]) -> list[tuple[str, float, float, float, bool]]:
    """Per figure: (name, first-window median, last-window median, ratio, within the aim)."""
    first, last = minutes[:WINDOW], minutes[-WINDOW:]
    figures: dict[str, Callable[[Minute], float | None]] = {
        "broker CPU %": lambda m: m.broker_cpu, "broker RSS MB": lambda m: m.broker_rss_mb,
        "stack CPU %": lambda m: m.stack_cpu,
    }
    for hop in HOPS:
        figures[f"{hop[0]} {hop[1]} p50 ms"] = lambda m, h=hop: m.latency_ms.get(h, (None, None))[0]
        figures[f"{hop[0]} {hop[1]} p99 ms"] = lambda m, h=hop: m.latency_ms.get(h, (None, None))[1]
    rows = []
    for name, value in figures.items():
        a = [v for v in map(value, first) if v is not None]
        b = [v for v in map(value, last) if v is not None]
        if not a or not b:
            continue
        ma, mb = statistics.median(a), statistics.median(b)
        ratio = mb / ma if ma else float("inf")
        rows.append((name, ma, mb, ratio, abs(ratio - 1) <= AIM))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="exchange events/s (the demo's default: 200)")
    parser.add_argument("--minutes", type=int, default=30)
    args = parser.parse_args()
    print(f"machine: {machine()}", flush=True)
    overrides = {"TICKPIPE_SIM__EVENTS_PER_S": str(args.rate)}
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp, local_stack(Path(tmp), overrides) as stack:
        print(f"soak: {args.rate:,.0f} events/s for {args.minutes} min", flush=True)
        minutes = soak(stack, args.minutes)
    print(f"\nmachine: {machine()}")
    print(f"verdict: median of the first {WINDOW} intervals vs the last {WINDOW} (aim: within {AIM:.0%})")
    for name, a, b, ratio, ok in verdict(minutes):
        print(f"  {name:<32} {a:10.1f} -> {b:10.1f}  x{ratio:5.2f}  {'holds' if ok else 'DEGRADED' if ratio > 1 else 'lower'}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("interrupted; the stack was stopped", file=sys.stderr)
        sys.exit(130)
