"""Faults executed: what ``POST /_sim/faults`` armed, and where each kind acts.

:mod:`sim_exchange.faults` parses the JSON into typed faults and plans a faulty connection's
frames; this module holds the armed state and applies it: websocket faults to connections of
:class:`~sim_exchange.market_streams.MarketStreams`, REST faults to matching requests (consumed
by the REST API), a 429 storm, a lagging ``myTrades`` and liquidity withdrawals in the flow.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from sim_exchange import metrics as m
from sim_exchange.faults import (
    KINDS,
    AnswerLost,
    BadChecksum,
    ConnectionFaults,
    DepthGap,
    Drop,
    Duplicate,
    Fault,
    LateExecution,
    Malformed,
    Reorder,
    RestError,
    RestFault,
    Schedule,
    ServerShutdown,
    SkipSequence,
    Stall,
    Storm429,
    TradesLag,
    Withdrawal,
    parse_faults,
    resolve_targets,
)
from sim_exchange.flow import BackgroundFlow
from sim_exchange.market_streams import Connection, MarketStreams

log = logging.getLogger("tickpipe.sim_exchange")


class FaultControl:
    """The armed faults of one venue and their effects."""

    def __init__(self, streams: MarketStreams, flow: BackgroundFlow, clock_ms: Callable[[], int],
                 rng: random.Random) -> None:
        self.streams = streams
        self.flow = flow
        self.clock_ms = clock_ms
        self.rng = rng
        self.rest_faults: list[list[Any]] = []  # [RestFault, remaining count]
        self.storm: Storm429 | None = None
        self.storm_until = 0.0
        self.trades_lag_ms, self.trades_lag_until = 0, 0.0
        self.withdrawal_ends: dict[str | None, float] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    # ---------------------------------------------------------------- consumed by the REST API
    def storm_hits(self, now: float) -> Storm429 | None:
        """The 429 storm if this request is one of those it answers with 429."""
        if self.storm is not None and now < self.storm_until and self.rng.random() < self.storm.probability:
            m.FAULTS_FIRED.labels("http_429").inc()
            return self.storm
        return None

    def match_rest_fault(self, path: str, method: str) -> RestFault | None:
        """Take one use of the first armed REST fault matching ``method path``."""
        for entry in self.rest_faults:
            fault, remaining = entry
            if remaining <= 0:
                continue
            if fault.path is not None and fault.path != path:
                continue
            if fault.method is not None and fault.method.upper() != method:
                continue
            entry[1] -= 1
            self.rest_faults = [e for e in self.rest_faults if e[1] > 0]
            m.FAULTS_FIRED.labels(next(k for k, v in KINDS.items() if isinstance(fault, v))).inc()
            log.info("rest fault fired", extra={"path": path, "fault": repr(fault)})
            return fault
        return None

    def trades_visible_until(self, now: float) -> int | None:
        """Newest execution time (ms) ``myTrades`` lists while the lag fault holds, else None."""
        return self.clock_ms() - self.trades_lag_ms if now < self.trades_lag_until else None

    def end_withdrawals(self, now: float) -> None:
        for symbol, end in list(self.withdrawal_ends.items()):
            if now >= end:
                self.flow.end_withdrawal(symbol)
                del self.withdrawal_ends[symbol]
                log.info("liquidity withdrawal over", extra={"symbol": symbol})

    # ---------------------------------------------------------------- arming
    def apply_faults(self, body: Any) -> dict[str, Any]:
        """Apply a ``POST /_sim/faults`` body now (or schedule its delayed/repeated parts)."""
        clear, faults = parse_faults(body)
        if clear:
            self.clear()
        applied = []
        for fault, schedule in faults:
            if schedule.after_s > 0 or schedule.every_s:
                self._spawn(self._scheduled(fault, schedule))
                applied.append({"kind": type(fault).__name__,
                                "scheduled": {"after_s": schedule.after_s, "every_s": schedule.every_s}})
            else:
                applied.append(self._apply(fault))
        return {"applied": applied, "cleared": clear}

    def clear(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        self.rest_faults.clear()
        self.storm = None
        self.trades_lag_until = 0.0
        for conn in self.streams.connections.values():
            conn.faults = ConnectionFaults(conn.faults.rng)
            conn.faulty = False
        for symbol in list(self.withdrawal_ends):
            self.flow.end_withdrawal(symbol)
        self.withdrawal_ends.clear()

    def state(self, now: float) -> dict[str, Any]:
        """What is armed (``GET /_sim/faults``)."""
        return {
            "rest_errors": [{"fault": repr(f), "remaining": n} for f, n in self.rest_faults],
            "http_429_until_s": max(0.0, self.storm_until - now) if self.storm else 0.0,
            "withdrawals": {str(k): round(v - now, 3) for k, v in self.withdrawal_ends.items()},
            "connections": [c.info(now) for c in self.streams.connections.values() if c.faulty],
            "scheduled": len(self.tasks),
        }

    def cancel_all(self) -> None:
        for task in list(self.tasks):
            task.cancel()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _scheduled(self, fault: Fault, schedule: Schedule) -> None:
        await asyncio.sleep(schedule.after_s)
        while True:
            self._apply(fault)
            if not schedule.every_s:
                return
            await asyncio.sleep(schedule.every_s)

    def _apply(self, fault: Fault) -> dict[str, Any]:
        now = time.monotonic()
        kind = type(fault).__name__
        m.FAULTS_APPLIED.labels(kind).inc()
        result: dict[str, Any] = {"kind": kind}
        connections = self.streams.connections
        if isinstance(fault, (Drop, Stall, DepthGap, BadChecksum, SkipSequence, Malformed, Duplicate, Reorder,
                              ServerShutdown)):
            targets = resolve_targets(fault.connections, list(connections), self.rng)
            result["connections"] = targets
            for conn_id in targets:
                self._apply_to_connection(connections[conn_id], fault, now)
        elif isinstance(fault, (RestError, LateExecution, AnswerLost)):
            # re-applying the same fault (every_s) re-arms it instead of stacking a backlog
            pending = next((entry for entry in self.rest_faults if entry[0] == fault), None)
            if pending is None:
                self.rest_faults.append([fault, fault.count])
            else:
                pending[1] = fault.count
        elif isinstance(fault, Storm429):
            self.storm, self.storm_until = fault, now + fault.seconds
        elif isinstance(fault, TradesLag):
            self.trades_lag_ms, self.trades_lag_until = int(fault.lag_s * 1000), now + fault.seconds
        elif isinstance(fault, Withdrawal):
            self.flow.set_withdrawal(fault.symbol, fault.extra_ticks, fault.size_factor)
            self.withdrawal_ends[fault.symbol] = now + fault.seconds
        log.info("fault applied", extra={"fault": repr(fault), "result": result})
        return result

    def _apply_to_connection(self, conn: Connection, fault: Fault, now: float) -> None:
        state = conn.faults
        if isinstance(fault, Drop):
            m.DISCONNECTS.labels("fault_drop").inc()
            conn.abort()
            return
        conn.faulty = True
        if isinstance(fault, Stall):
            state.stalled_until = now + fault.seconds
            conn.queue.clear()
        elif isinstance(fault, DepthGap):
            state.gaps[fault.symbol] = state.gaps.get(fault.symbol, 0) + fault.count
        elif isinstance(fault, SkipSequence):
            state.skip_sequence += fault.count
        elif isinstance(fault, Malformed):
            state.malformed += fault.count
        elif isinstance(fault, BadChecksum):
            state.bad_checksums[fault.symbol] = state.bad_checksums.get(fault.symbol, 0) + fault.count
        elif isinstance(fault, Duplicate):
            state.duplicate_p, state.duplicate_until = fault.probability, now + fault.seconds
        elif isinstance(fault, Reorder):
            state.reorder_p, state.reorder_until = fault.probability, now + fault.seconds
        elif isinstance(fault, ServerShutdown):
            conn.reply({"e": "serverShutdown", "E": self.clock_ms()})
            asyncio.get_running_loop().call_later(fault.close_after_s, self._close_soon, conn)

    def _close_soon(self, conn: Connection) -> None:
        if not conn.ws.closed:
            conn.closing = True
            self._spawn(conn.ws.close(code=1001, message=b"server shutdown"))
