"""Whole-pipeline checks shared by the end-to-end test and the fault drills.

Each check compares what analysts see in ClickHouse (the deduplicating ``v_*`` views) with the
simulated exchange's own record of what happened, so a lost or duplicated message anywhere on the
path venue -> feed -> Kafka -> sink shows up as a difference.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import clickhouse_connect
import pandas as pd
import requests

from executor.ids import parse_client_order_id
from executor.venue import BinanceVenue

SIM_KEY, SIM_SECRET = "tickpipe-sim-key", "tickpipe-sim-secret"
HOPS = {
    ("event->recv", "md_trades"), ("event->recv", "md_bbo"), ("event->recv", "md_book"),
    ("recv->emit", "features_book"), ("recv->emit", "features_flow"), ("recv->emit", "signals"),
    ("recv->emit", "orders"), ("signal->order", "orders"),
}


@dataclass
class Pipeline:
    """Clients for a running stack: the warehouse (SQL) and the simulated exchange (REST)."""

    warehouse_url: str
    sim_url: str
    symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT")

    def __post_init__(self) -> None:
        host, port = self.warehouse_url.removeprefix("http://").split(":")
        self.sql = clickhouse_connect.get_client(host=host, port=int(port), database="tickpipe", compress=False)
        self.venue = BinanceVenue(self.sim_url, SIM_KEY, SIM_SECRET, timeout_ms=10_000)

    def rows(self, query: str) -> list[tuple[Any, ...]]:
        return self.sql.query(query).result_rows

    def pause_flow(self) -> None:
        requests.post(f"{self.sim_url}/_sim/flow", json={"paused": True}, timeout=10).raise_for_status()

    def resume_flow(self) -> None:
        requests.post(f"{self.sim_url}/_sim/flow", json={"paused": False}, timeout=10).raise_for_status()

    def faults(self, spec: dict[str, Any]) -> dict[str, Any]:
        response = requests.post(f"{self.sim_url}/_sim/faults", json=spec, timeout=10)
        response.raise_for_status()
        return response.json()

    def sim_trades(self, symbol: str, from_id: int = 1) -> list[dict[str, Any]]:
        """Every trade the exchange made for ``symbol`` from ``from_id`` on."""
        trades: list[dict[str, Any]] = []
        while True:
            page = requests.get(
                f"{self.sim_url}/_sim/trades", params={"symbol": symbol, "fromId": from_id, "limit": 100_000}, timeout=30
            ).json()
            trades += page
            if len(page) < 100_000:
                return trades
            from_id = page[-1]["id"] + 1

    def archived_trades(self, symbol: str) -> list[tuple[int, Decimal, Decimal]]:
        return self.rows(
            f"SELECT trade_id, price, qty FROM v_md_trades WHERE symbol = '{symbol}' ORDER BY trade_id"
        )

    def wait_archived(self, symbol: str, last_id: int, timeout_s: float = 90.0) -> None:
        """Wait until the sink has archived ``symbol``'s trades up to ``last_id``."""
        deadline = time.monotonic() + timeout_s
        newest = 0
        while time.monotonic() < deadline:
            newest = self.rows(f"SELECT max(trade_id) FROM v_md_trades WHERE symbol = '{symbol}'")[0][0] or 0
            if newest >= last_id:
                return
            time.sleep(1)
        raise AssertionError(f"{symbol}: archive reached trade {newest}, the exchange made {last_id}")


def trade_differences(pipe: Pipeline, symbol: str, first_id: int | None = None) -> dict[str, Any]:
    """Compare archived trades with the exchange's from the first one the feed saw (or ``first_id``).

    Returns the missing ids, the duplicated ids and the ids whose price or quantity differ.
    """
    archived = pipe.archived_trades(symbol)
    counts = Counter(t[0] for t in archived)
    start = first_id if first_id is not None else min(counts)
    venue = {t["id"]: t for t in pipe.sim_trades(symbol, start)}
    by_id = {t[0]: t for t in archived}
    return {
        "checked": len(venue),
        "missing": sorted(set(venue) - set(by_id)),
        "duplicated": sorted(i for i, n in counts.items() if n > 1),
        "unknown": sorted(i for i in by_id if i >= start and i not in venue),
        "mismatched": sorted(
            i for i, t in venue.items()
            if i in by_id and (Decimal(t["price"]) != by_id[i][1] or Decimal(t["qty"]) != by_id[i][2])
        ),
    }


def pandas_bars(trades: pd.DataFrame, rule: str) -> pd.DataFrame:
    """OHLCV of ``trades`` (columns ts, price, qty as Decimal) resampled by ``rule``, empty bins dropped."""
    frame = trades.set_index("ts").sort_index()
    grouped = frame.resample(rule, label="left", closed="left")
    bars = pd.DataFrame({
        "open": grouped["price"].first(),
        "high": grouped["price"].max(),
        "low": grouped["price"].min(),
        "close": grouped["price"].last(),
        "volume": grouped["qty"].sum(),
        "trade_count": grouped["price"].count(),
    })
    return bars[bars["trade_count"] > 0]


def bar_differences(pipe: Pipeline, symbol: str) -> tuple[int, list[str]]:
    """Compare the streams' 1 m bars (newest version of each) with pandas resample of archived trades."""
    trades = pd.DataFrame(
        pipe.rows(f"SELECT ts_event, trade_id, price, qty FROM v_md_trades WHERE symbol = '{symbol}' ORDER BY trade_id"),
        columns=["ts", "trade_id", "price", "qty"],
    )
    expected = pandas_bars(trades, "1min")
    bars = pipe.rows(
        "SELECT start, argMax(open, version), argMax(high, version), argMax(low, version), argMax(close, version),"
        " argMax(volume, version), argMax(trade_count, version) FROM v_bars_1m"
        f" WHERE symbol = '{symbol}' GROUP BY start ORDER BY start"
    )
    # The feed joined mid-minute, so the first minute is partial for the streams and left out.
    first_full = trades["ts"].min().floor("1min") + pd.Timedelta(minutes=1)
    problems, compared = [], 0
    for start, *got in bars:
        key = pd.Timestamp(start)
        if key < first_full:
            continue
        compared += 1
        if key not in expected.index:
            problems.append(f"{symbol} {key}: bar without trades")
            continue
        row = expected.loc[key]
        want = [row["open"], row["high"], row["low"], row["close"], row["volume"]]
        if [Decimal(x) for x in got[:5]] + [int(got[5])] != [Decimal(x) for x in want] + [int(row["trade_count"])]:
            problems.append(f"{symbol} {key}: bar {got} != pandas {want + [int(row['trade_count'])]}")
    return compared, problems


def order_problems(pipe: Pipeline) -> list[str]:
    """No duplicate order: each client order id is one venue order; a signal's leg never has two live orders."""
    rows = pipe.rows(
        "SELECT client_order_id, signal_id, groupUniqArray(venue_order_id), min(ts_event),"
        " maxIf(ts_event, status IN ('filled', 'canceled', 'rejected', 'expired', 'denied'))"
        " FROM v_orders GROUP BY client_order_id, signal_id"
    )
    problems = []
    lifetimes: dict[tuple[str, int], list[tuple[int, Any, Any, str]]] = defaultdict(list)
    for cid, signal_id, venue_ids, first, last in rows:
        known = [v for v in venue_ids if v]
        if len(known) > 1:
            problems.append(f"{cid}: several venue orders {known}")
        parsed = parse_client_order_id(cid)
        if parsed is None:
            problems.append(f"{cid}: not one of our ids")
            continue
        _, leg, attempt = parsed
        lifetimes[(signal_id, leg)].append((attempt, first, last, cid))
    for (signal_id, leg), orders in lifetimes.items():
        attempts = [o[0] for o in orders]
        if len(attempts) != len(set(attempts)):
            problems.append(f"signal {signal_id} leg {leg}: attempt used twice {attempts}")
        orders.sort()
        for prev, nxt in itertools.pairwise(orders):
            if prev[2] is None or prev[2] > nxt[1]:
                problems.append(f"signal {signal_id} leg {leg}: {nxt[3]} started while {prev[3]} was live")
    return problems


def fill_differences(pipe: Pipeline) -> dict[str, list[Any]]:
    """Fills archived from the `fills` topic against the venue's own record of our trades."""
    archived = Counter(
        (s, int(t), Decimal(p), Decimal(q)) for s, t, p, q in pipe.rows("SELECT symbol, trade_id, price, qty FROM v_fills")
    )
    venue = Counter()
    for symbol in pipe.symbols:
        for t in pipe.venue.my_trades(symbol, limit=1000):
            venue[(symbol, int(t["id"]), Decimal(t["price"]), Decimal(t["qty"]))] += 1
    return {
        "missing": sorted(set(venue) - set(archived)),
        "extra": sorted(set(archived) - set(venue)),
        "duplicated": sorted(k for k, n in archived.items() if n > 1),
    }


def recorded_hops(pipe: Pipeline) -> set[tuple[str, str]]:
    return {(h, s) for h, s, n in pipe.rows("SELECT hop, source, count() FROM hop_latency GROUP BY hop, source") if n}
