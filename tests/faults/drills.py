"""Fault drills against one running stack: the faults, the measurements, and the per-drill books.

A drill injects one fault, waits until the pipeline has recovered, then settles: the venue's flow is
paused, the pipeline drains, and the archive is compared with the exchange (every trade from the
first one the feed saw, every order). Problems are attributed to the drill after which they first
appear, so one lossy drill does not fail the others. Every drill's figures go to a JSON report.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import requests

from infra.health import probe
from infra.stack import StackPaths
from infra.supervision import Supervisor
from tests.e2e.pipeline_checks import Pipeline, order_problems, trade_differences
from tests.stack_harness import RunningStack

OURS = ("feed", "streams", "sink", "executor", "warehouse", "broker")
"""Services we run and supervise, each killed with SIGKILL in turn. The simulated exchange is left
out (it is the venue, and a restarted one starts its trade ids again from 1)."""


def wait_for(what: str, check: Callable[[], Any], timeout_s: float, every_s: float = 0.25) -> tuple[Any, float]:
    """Poll ``check`` until it returns something truthy; return it and the seconds it took."""
    started = time.monotonic()
    while True:
        value = check()
        if value:
            return value, time.monotonic() - started
        if time.monotonic() - started > timeout_s:
            raise TimeoutError(f"{what}: not within {timeout_s:.0f}s")
        time.sleep(every_s)


@dataclass
class DrillRecord:
    """What one drill did, what the pipeline did, and what the archive showed afterwards."""

    name: str
    action: str
    measured: dict[str, Any] = field(default_factory=dict)
    health: list[dict[str, Any]] = field(default_factory=list)
    restarted: dict[str, list[int]] = field(default_factory=dict)
    outcome: dict[str, Any] = field(default_factory=dict)


class DrillBench:
    """One stack, its clients, and the books kept across the sequence of drills."""

    def __init__(self, stack: RunningStack, report_path: Path) -> None:
        self.stack = stack
        self.pipe = Pipeline(stack.record.warehouse_url, stack.service("sim-exchange").url)
        self.sim_url = stack.service("sim-exchange").url
        self.report_path = report_path
        self.records: list[DrillRecord] = []
        self._missing: dict[str, set[int]] = {s: set() for s in self.pipe.symbols}
        self._duplicated: dict[str, set[int]] = {s: set() for s in self.pipe.symbols}
        self._order_problems: set[str] = set()

    # ---- the stack ----------------------------------------------------------------------------

    @property
    def supervisor(self) -> Supervisor:
        return Supervisor(StackPaths(self.stack.home))

    def pids(self) -> dict[str, int]:
        return {info.name: info.pid for info in self.supervisor.all_info()}

    def broker_pid(self) -> int:
        """The Kafka JVM: ``tickpipe broker`` execs it, so it is the supervised program's own pid."""
        return self.stack.pid("broker")

    def healthy(self, name: str) -> bool:
        return probe(self.stack.service(name)).ok

    def freeze(self, pid: int, seconds: float) -> None:
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(seconds)
        finally:
            os.kill(pid, signal.SIGCONT)

    # ---- the venue ----------------------------------------------------------------------------

    def feed_connections(self) -> list[dict[str, Any]]:
        """The exchange's websocket connections that carry the feed's trade streams."""
        conns = requests.get(f"{self.sim_url}/_sim/connections", timeout=10).json()
        return [c for c in conns if any("@trade" in s for s in c.get("streams", []))]

    def venue_newest(self) -> dict[str, int]:
        """The exchange's newest trade id per symbol, from its control API (no request weight: the
        feed and the executor share the venue's per-IP weight budget with this test)."""
        archived = self.archived_newest()
        newest = {}
        for symbol in self.pipe.symbols:
            trades = self.pipe.sim_trades(symbol, from_id=max(archived.get(symbol, 1), 1))
            newest[symbol] = trades[-1]["id"]
        return newest

    def executor_open_orders(self) -> int:
        """The executor's own gauge of orders live on the venue (its metrics: no venue request weight)."""
        text = requests.get(f"{self.stack.service('executor').url}/metrics", timeout=5).text
        return int(next((float(line.split()[1]) for line in text.splitlines() if line.startswith("executor_open_orders ")), 0))

    def wait_working_order(self, timeout_s: float = 30.0) -> int:
        """Wait until the executor has an order open on the venue; return how many (0 if none came)."""
        try:
            return wait_for("an open order", self.executor_open_orders, timeout_s, every_s=0.1)[0]
        except TimeoutError:
            return 0

    # ---- the archive --------------------------------------------------------------------------

    def archived_newest(self) -> dict[str, int]:
        rows = self.pipe.rows("SELECT symbol, max(trade_id) FROM v_md_trades WHERE venue = 'binance' GROUP BY symbol")
        return {s: int(n) for s, n in rows}

    def catch_up_s(self, timeout_s: float = 90.0) -> float:
        """Seconds until the archive holds every symbol's newest venue trade as of now (flow running)."""
        target = self.venue_newest()

        def reached() -> bool:
            got = self.archived_newest()
            return all(got.get(s, 0) >= n for s, n in target.items())

        return round(wait_for("archive catch-up", reached, timeout_s)[1], 2)

    def health_since(self, since: float) -> list[dict[str, Any]]:
        """Feed-health events (the archived ``md.health`` topic) received since ``since`` (epoch s)."""
        rows = self.pipe.rows(
            "SELECT kind, connection_id, count(), sum(count), any(detail) FROM v_md_health"
            f" WHERE ts_recv >= fromUnixTimestamp64Nano(toInt64({int(since * 1e9)}))"
            " GROUP BY kind, connection_id ORDER BY kind, connection_id"
        )
        return [
            {"kind": k, "connection": c, "events": int(n), "count": int(total), "detail": d}
            for k, c, n, total, d in rows
        ]

    def wait_health(self, since: float, kind: str, events: int = 1, timeout_s: float = 60.0) -> float:
        """Seconds until at least ``events`` health events of ``kind`` since ``since`` are archived."""

        def enough() -> bool:
            return sum(h["events"] for h in self.health_since(since) if h["kind"] == kind) >= events

        return round(wait_for(f"{events} '{kind}' health event(s)", enough, timeout_s, every_s=0.5)[1], 2)

    # ---- the books ----------------------------------------------------------------------------

    def settle(self, record: DrillRecord, since: float, before: dict[str, int]) -> DrillRecord:
        """Pause the venue, drain, compare the archive with the exchange, resume; file the record."""
        self.pipe.pause_flow()
        try:
            last = self.venue_newest()
            drained_at = time.monotonic()
            for symbol, last_id in last.items():
                self.pipe.wait_archived(symbol, last_id)
            record.measured["drain_s"] = round(time.monotonic() - drained_at, 2)
            self._wait_orders_quiet()
            record.outcome = self._compare()
            record.health = self.health_since(since)
        finally:
            self.pipe.resume_flow()
        after = self.pids()
        record.restarted = {n: [before[n], after[n]] for n in before if before[n] != after.get(n)}
        self.records.append(record)
        self.write_report()
        return record

    def _wait_orders_quiet(self, quiet_s: float = 2.0, timeout_s: float = 20.0) -> None:
        # Orders in flight settle: their terminal events reach the archive.
        count = -1
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            now = self.pipe.rows("SELECT count() FROM v_orders")[0][0]
            if now == count:
                return
            count = now
            time.sleep(quiet_s)

    def _compare(self) -> dict[str, Any]:
        outcome: dict[str, Any] = {"trades_checked": 0, "missing": {}, "duplicated": {}, "unknown": {}, "mismatched": {}}
        for symbol in self.pipe.symbols:
            diff = trade_differences(self.pipe, symbol)
            outcome["trades_checked"] += diff["checked"]
            new_missing = sorted(set(diff["missing"]) - self._missing[symbol])
            new_duplicated = sorted(set(diff["duplicated"]) - self._duplicated[symbol])
            self._missing[symbol] |= set(diff["missing"])
            self._duplicated[symbol] |= set(diff["duplicated"])
            outcome["missing"][symbol] = new_missing
            outcome["duplicated"][symbol] = new_duplicated
            outcome["unknown"][symbol] = diff["unknown"]
            outcome["mismatched"][symbol] = diff["mismatched"]
        problems = set(order_problems(self.pipe))
        outcome["duplicate_orders"] = sorted(problems - self._order_problems)
        self._order_problems |= problems
        outcome["orders"] = self.pipe.rows("SELECT uniqExact(client_order_id) FROM v_orders")[0][0]
        return outcome

    def write_report(self) -> None:
        self.report_path.write_text(json.dumps([asdict(r) for r in self.records], indent=2, default=str))


def missing_count(record: DrillRecord) -> int:
    return sum(len(v) for v in record.outcome["missing"].values())


def duplicated_count(record: DrillRecord) -> int:
    return sum(len(v) for v in record.outcome["duplicated"].values())


def health_kinds(record: DrillRecord) -> dict[str, int]:
    """Health events per kind in the drill's window."""
    kinds: dict[str, int] = {}
    for h in record.health:
        kinds[h["kind"]] = kinds.get(h["kind"], 0) + h["events"]
    return kinds
