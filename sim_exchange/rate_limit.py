"""Binance's request-weight and order-count limits, as fixed windows aligned to the clock.

Binance counts weight per IP in the current UTC minute and answers ``429`` with ``Retry-After``
(seconds to the next minute) once a request would pass the limit; new orders are counted per
account in 10-second and 1-day windows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sim_exchange import errors


@dataclass(slots=True)
class _Window:
    start_ms: int = 0
    used: int = 0


@dataclass(slots=True)
class FixedWindowCounter:
    """Count units per key in windows of ``window_ms`` aligned to multiples of it."""

    window_ms: int
    limit: int
    windows: dict[str, _Window] = field(default_factory=dict)

    def used(self, key: str, now_ms: int) -> int:
        window = self._window(key, now_ms)
        return window.used

    def retry_after_s(self, now_ms: int) -> int:
        """Seconds until the current window ends (at least 1)."""
        start = now_ms - now_ms % self.window_ms
        return max(1, -(-(start + self.window_ms - now_ms) // 1000))

    def add(self, key: str, units: int, now_ms: int) -> tuple[int, bool]:
        """Count ``units`` for ``key``; return the new total and whether it is within the limit."""
        window = self._window(key, now_ms)
        window.used += units
        return window.used, window.used <= self.limit

    def _window(self, key: str, now_ms: int) -> _Window:
        start = now_ms - now_ms % self.window_ms
        window = self.windows.get(key)
        if window is None or window.start_ms != start:
            window = self.windows[key] = _Window(start, 0)
        return window


class RateLimits:
    """REQUEST_WEIGHT per IP per minute and ORDERS per account per 10 s and per day."""

    def __init__(self, weight_per_minute: int, orders_per_10s: int, orders_per_day: int) -> None:
        self.weight = FixedWindowCounter(60_000, weight_per_minute)
        self.orders_10s = FixedWindowCounter(10_000, orders_per_10s)
        self.orders_day = FixedWindowCounter(86_400_000, orders_per_day)

    def charge_weight(self, ip: str, weight: int, now_ms: int) -> int:
        """Count a request's weight; raise ``-1003`` (HTTP 429) past the limit."""
        used, ok = self.weight.add(ip, weight, now_ms)
        if not ok:
            raise errors.too_much_weight(self.weight.limit)
        return used

    def charge_order(self, account: str, now_ms: int) -> tuple[int, int]:
        """Count a new order; raise ``-1015`` (HTTP 429) past either order limit."""
        used_10s, ok_10s = self.orders_10s.add(account, 1, now_ms)
        used_day, ok_day = self.orders_day.add(account, 1, now_ms)
        if not ok_10s:
            raise errors.too_many_orders(self.orders_10s.limit)
        if not ok_day:
            raise errors.BinanceError(-1015, f"Too many new orders; current limit is {self.orders_day.limit} orders per DAY.", 429)
        return used_10s, used_day

    def rate_limits_json(self) -> list[dict[str, object]]:
        """The ``rateLimits`` array of ``/api/v3/exchangeInfo``."""
        return [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": self.weight.limit},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": self.orders_10s.limit},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": self.orders_day.limit},
            {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
        ]
