"""The pre-trade risk engine: every order passes here first; a failed check denies it, never raises.

Checks, in order: trading state (ACTIVE / REDUCING / HALTED: the kill switch), price band around mid,
max order notional, max open orders, max position per instrument, and an orders-per-second token
bucket sized from the venue's ``rateLimits``.  A denial is returned as :class:`Denied` and published
by the engine as an ``OrderEvent`` with status ``denied`` and the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from executor.commands import SubmitOrder
from executor.policy import BPS


class TradingState(StrEnum):
    """What the risk engine lets through."""

    ACTIVE = "ACTIVE"  # everything within limits
    REDUCING = "REDUCING"  # only orders that shrink the position
    HALTED = "HALTED"  # nothing (kill switch)


@dataclass(frozen=True)
class RiskLimits:
    """Limits (from ``ExecutorSettings``)."""

    max_order_notional: Decimal
    max_position: Decimal
    max_open_orders: int
    price_band_bps: Decimal
    max_throttle_wait_s: float


@dataclass(frozen=True)
class Approved:
    """The order may go out now."""


@dataclass(frozen=True)
class Throttled:
    """The order may go out after ``wait_s`` (rate limit); not a denial."""

    wait_s: float


@dataclass(frozen=True)
class Denied:
    """The order must not go out; ``reason`` is published with the ``denied`` OrderEvent."""

    reason: str


Verdict = Approved | Throttled | Denied


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` banked; the clock is injected (seconds)."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float]) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"token bucket needs rate > 0 and burst >= 1, got {rate}, {burst}")
        self.rate, self.burst, self._clock = rate, burst, clock
        self._tokens, self._at = burst, clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def wait_s(self) -> float:
        """Seconds until one token is available (0 when one is)."""
        self._refill()
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate

    def take(self) -> None:
        """Spend one token (call only when :meth:`wait_s` is 0)."""
        self._refill()
        self._tokens -= 1


def buckets_from_rate_limits(
    rate_limits: list[dict[str, Any]], fraction: float, clock: Callable[[], float]
) -> list[TokenBucket]:
    """One token bucket per Binance ``ORDERS`` rate limit, each holding ``fraction`` of its window's allowance.

    A window of ``limit`` orders per ``interval`` becomes capacity ``limit * fraction`` refilled at
    ``limit * fraction / interval`` per second, so short bursts use the short windows' allowance while
    the long windows (per day) still bound the sustained rate.
    """
    seconds = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86_400}
    buckets = []
    for limit in rate_limits:
        if limit.get("rateLimitType") != "ORDERS":
            continue
        window = seconds[limit["interval"]] * int(limit.get("intervalNum", 1))
        allowance = max(1.0, int(limit["limit"]) * fraction)
        buckets.append(TokenBucket(allowance / window, allowance, clock))
    if not buckets:
        raise ValueError(f"no ORDERS rate limit in exchangeInfo rateLimits: {rate_limits}")
    return buckets


class RiskEngine:
    """Stateful pre-trade checks. The engine feeds it positions and open-order counts."""

    def __init__(
        self, limits: RiskLimits, buckets: list[TokenBucket], state: TradingState = TradingState.ACTIVE
    ) -> None:
        self.limits = limits
        self.buckets = buckets
        self.state = state
        self.state_reason = ""

    def set_state(self, state: TradingState, reason: str) -> None:
        """Switch trading state (kill switch: HALTED; release: ACTIVE)."""
        self.state, self.state_reason = state, reason

    def check(self, order: SubmitOrder, mid: Decimal | None, position: Decimal, open_orders: int) -> Verdict:
        """Return the verdict on ``order``; an Approved verdict has already spent its rate token."""
        signed = order.qty * order.side.sign
        reduces = position != 0 and (position > 0) != (signed > 0) and abs(signed) <= abs(position)
        if self.state is TradingState.HALTED:
            return Denied(f"trading halted: {self.state_reason}")
        if self.state is TradingState.REDUCING and not reduces:
            return Denied(f"trading reducing only: {self.state_reason}")
        if mid is None:
            return Denied("no market mid to check the price band")
        band = mid * self.limits.price_band_bps / BPS
        if abs(order.price - mid) > band:
            return Denied(f"price {order.price} outside band {self.limits.price_band_bps} bps around mid {mid}")
        if order.notional > self.limits.max_order_notional:
            return Denied(f"notional {order.notional} above max {self.limits.max_order_notional}")
        if open_orders >= self.limits.max_open_orders:
            return Denied(f"{open_orders} open orders, max {self.limits.max_open_orders}")
        if not reduces and abs(position + signed) > self.limits.max_position:
            return Denied(f"position would be {position + signed}, max {self.limits.max_position}")
        wait = max(bucket.wait_s() for bucket in self.buckets)
        if wait > self.limits.max_throttle_wait_s:
            return Denied(f"order rate limit: next slot in {wait:.3f}s")
        if wait > 0:
            return Throttled(wait)
        for bucket in self.buckets:
            bucket.take()
        return Approved()
