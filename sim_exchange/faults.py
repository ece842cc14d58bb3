"""Faults on demand: the JSON of ``POST /_sim/faults`` parsed into typed faults, and the per-connection
frame plan that applies stalls, depth gaps, duplicates and reorders.

The body is an object whose keys name fault kinds (each at most once per request); see
``docs/sim_exchange.md`` for the full table. Every kind accepts ``after_s`` (apply later) and
``every_s`` (repeat). Websocket faults take ``connections``: ``"all"``, ``"random"`` (one connection
drawn from the fault RNG), ``"oldest"``, ``"newest"``, a connection index or a list of indexes (see
``GET /_sim/connections``). Pure: the server executes the faults and owns every socket.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Target = str | int | list[int]
_TARGET_WORDS = ("all", "random", "oldest", "newest")


class FaultSpecError(ValueError):
    """The faults JSON is malformed; the message names the field."""


@dataclass(frozen=True, slots=True)
class Schedule:
    after_s: float = 0.0
    every_s: float | None = None


@dataclass(frozen=True, slots=True)
class Drop:
    """Abort TCP connections without a close frame (a network drop)."""

    connections: Target = "all"


@dataclass(frozen=True, slots=True)
class Stall:
    """Keep sockets open but send nothing (no data, no pings) for ``seconds``."""

    connections: Target = "all"
    seconds: float = 10.0


@dataclass(frozen=True, slots=True)
class DepthGap:
    """Skip the next ``count`` depth diff events (a ``U``/``u`` gap) of ``symbol`` (None = any)."""

    connections: Target = "all"
    symbol: str | None = None
    count: int = 1


@dataclass(frozen=True, slots=True)
class BadChecksum:
    """Send a wrong ``checksum`` in the next ``count`` Kraken book messages of ``symbol`` (None = any)."""

    connections: Target = "all"
    symbol: str | None = None
    count: int = 1


@dataclass(frozen=True, slots=True)
class SkipSequence:
    """Make the next Coinbase message's ``sequence_num`` jump by ``count`` (nothing is lost)."""

    connections: Target = "all"
    count: int = 1


@dataclass(frozen=True, slots=True)
class Malformed:
    """Before each of the next ``count`` frames, send its first half (not JSON): garbage, nothing lost."""

    connections: Target = "all"
    count: int = 1


@dataclass(frozen=True, slots=True)
class Duplicate:
    """Send a frame twice with ``probability`` for ``seconds``."""

    connections: Target = "all"
    probability: float = 0.1
    seconds: float = 10.0


@dataclass(frozen=True, slots=True)
class Reorder:
    """Swap a frame with the next one with ``probability`` for ``seconds``."""

    connections: Target = "all"
    probability: float = 0.1
    seconds: float = 10.0


@dataclass(frozen=True, slots=True)
class ServerShutdown:
    """Send ``{"e":"serverShutdown","E":...}`` and close ``close_after_s`` later (code 1001)."""

    connections: Target = "all"
    close_after_s: float = 1.0


@dataclass(frozen=True, slots=True)
class RestError:
    """Answer the next ``count`` matching REST calls with an error or a long delay.

    ``mode`` is ``"error"`` (HTTP ``status``, Binance ``-1007`` "execution status unknown" body) or
    ``"timeout"`` (hold the answer ``delay_s``). With ``after_execution`` the request is executed
    first, so an order is really placed or cancelled although the client never learns it.
    """

    mode: str = "error"
    count: int = 1
    path: str | None = "/api/v3/order"
    method: str | None = None
    status: int = 503
    delay_s: float = 15.0
    after_execution: bool = True


@dataclass(frozen=True, slots=True)
class Storm429:
    """Answer REST calls with 429 + ``Retry-After`` (``-1003``) with ``probability`` for ``seconds``."""

    seconds: float = 5.0
    probability: float = 1.0
    retry_after_s: int = 1


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """Liquidity withdrawal: spread widens by ``extra_ticks`` and sizes shrink for ``seconds``."""

    symbol: str | None = None
    seconds: float = 10.0
    extra_ticks: int = 20
    size_factor: float = 0.2


@dataclass(frozen=True, slots=True)
class LateExecution:
    """Hold the next ``count`` matching REST calls ``delay_s`` inside the venue, then execute them.

    A client that timed out meanwhile never learns the outcome and may find "no such order" while the
    request is held. As on Binance, the ``timestamp``/``recvWindow`` check runs when the request
    executes: one whose ``timestamp + recvWindow`` passed while it was held is dropped (-1021).
    """

    count: int = 1
    path: str | None = "/api/v3/order"
    method: str | None = "POST"
    delay_s: float = 2.0


@dataclass(frozen=True, slots=True)
class AnswerLost:
    """Execute the next ``count`` matching REST calls, then drop the connection without an answer."""

    count: int = 1
    path: str | None = "/api/v3/order"
    method: str | None = "POST"


@dataclass(frozen=True, slots=True)
class TradesLag:
    """For ``seconds``, ``myTrades`` leaves out executions younger than ``lag_s`` (order state runs ahead)."""

    seconds: float = 10.0
    lag_s: float = 3.0


RestFault = RestError | LateExecution | AnswerLost
Fault = (Drop | Stall | DepthGap | BadChecksum | SkipSequence | Malformed | Duplicate | Reorder | ServerShutdown | RestError | Storm429 | Withdrawal
         | LateExecution | AnswerLost | TradesLag)

KINDS: dict[str, type] = {
    "drop": Drop,
    "stall": Stall,
    "depth_gap": DepthGap,
    "bad_checksum": BadChecksum,
    "malformed": Malformed,
    "skip_sequence": SkipSequence,
    "duplicate": Duplicate,
    "reorder": Reorder,
    "server_shutdown": ServerShutdown,
    "rest_error": RestError,
    "http_429": Storm429,
    "liquidity_withdrawal": Withdrawal,
    "late_execution": LateExecution,
    "answer_lost": AnswerLost,
    "mytrades_lag": TradesLag,
}


def parse_faults(body: Mapping[str, Any]) -> tuple[bool, list[tuple[Fault, Schedule]]]:
    """Parse a faults body into ``(clear_first, [(fault, schedule), ...])``."""
    if not isinstance(body, Mapping):
        raise FaultSpecError("body must be a JSON object keyed by fault kind")
    clear = bool(body.get("clear", False))
    parsed: list[tuple[Fault, Schedule]] = []
    for kind, params in body.items():
        if kind == "clear":
            continue
        cls = KINDS.get(kind)
        if cls is None:
            raise FaultSpecError(f"unknown fault kind {kind!r}; known: {', '.join(KINDS)}")
        if params is True:
            params = {}
        if not isinstance(params, Mapping):
            raise FaultSpecError(f"{kind}: parameters must be an object")
        params = dict(params)
        schedule = Schedule(float(params.pop("after_s", 0.0)), _opt_float(params.pop("every_s", None)))
        known = set(cls.__dataclass_fields__)
        unknown = set(params) - known
        if unknown:
            raise FaultSpecError(f"{kind}: unknown field(s) {sorted(unknown)}; known: {sorted(known)}")
        try:
            fault = cls(**params)
        except TypeError as exc:
            raise FaultSpecError(f"{kind}: {exc}") from None
        _validate(kind, fault)
        parsed.append((fault, schedule))
    return clear, parsed


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _validate(kind: str, fault: Fault) -> None:
    target = getattr(fault, "connections", "all")
    if not (
        target in _TARGET_WORDS
        or (isinstance(target, int) and not isinstance(target, bool))
        or (isinstance(target, list) and all(isinstance(i, int) for i in target))
    ):
        raise FaultSpecError(f"{kind}.connections: use {_TARGET_WORDS}, an index or a list of indexes")
    probability = getattr(fault, "probability", 1.0)
    if not 0.0 <= float(probability) <= 1.0:
        raise FaultSpecError(f"{kind}.probability must be within [0, 1]")
    if isinstance(fault, RestError) and fault.mode not in ("error", "timeout"):
        raise FaultSpecError("rest_error.mode must be 'error' or 'timeout'")


def resolve_targets(target: Target, connection_ids: Sequence[int], rng: random.Random) -> list[int]:
    """Turn a ``connections`` target into the ids of live connections it names."""
    ids = sorted(connection_ids)
    if not ids:
        return []
    if target == "all":
        return ids
    if target == "random":
        return [rng.choice(ids)]
    if target == "oldest":
        return ids[:1]
    if target == "newest":
        return ids[-1:]
    wanted = [target] if isinstance(target, int) else list(target)
    return [i for i in wanted if i in ids]


@dataclass(slots=True)
class ConnectionFaults:
    """Fault state of one websocket connection; :meth:`plan` decides what a frame becomes."""

    rng: random.Random
    stalled_until: float = 0.0
    gaps: dict[str | None, int] = field(default_factory=dict)
    bad_checksums: dict[str | None, int] = field(default_factory=dict)
    malformed: int = 0
    skip_sequence: int = 0
    duplicate_p: float = 0.0
    duplicate_until: float = 0.0
    reorder_p: float = 0.0
    reorder_until: float = 0.0
    held: bytes | None = None

    def stalled(self, now: float) -> bool:
        return now < self.stalled_until

    def take_skip_sequence(self) -> int:
        """Return how far the next message's sequence number jumps (once)."""
        jump, self.skip_sequence = self.skip_sequence, 0
        return jump

    def take_bad_checksum(self, symbol: str | None) -> bool:
        """Use one armed wrong checksum for a book message of ``symbol``, if any is armed."""
        for key in (symbol, None):
            left = self.bad_checksums.get(key, 0)
            if left > 0:
                if left == 1:
                    del self.bad_checksums[key]
                else:
                    self.bad_checksums[key] = left - 1
                return True
        return False

    def plan(self, frame: bytes, depth_symbol: str | None, now: float) -> list[bytes]:
        """Return the frames to send now in place of ``frame`` (none, one, two, or swapped)."""
        if now < self.stalled_until:
            return []
        if depth_symbol is not None and self.gaps:
            for key in (depth_symbol, None):
                left = self.gaps.get(key, 0)
                if left > 0:
                    if left == 1:
                        del self.gaps[key]
                    else:
                        self.gaps[key] = left - 1
                    return []
        out = [frame]
        if self.malformed > 0:
            self.malformed -= 1
            out.insert(0, frame[: len(frame) // 2])
        if now < self.duplicate_until and self.rng.random() < self.duplicate_p:
            out.append(frame)
        if self.held is not None:
            out.append(self.held)
            self.held = None
        elif now < self.reorder_until and self.rng.random() < self.reorder_p:
            self.held = frame
            return []
        return out
