"""OHLCV bars by event time with exact Decimal arithmetic and bounded lateness.

A bar covers ``[start, start + interval)`` of ``ts_event``. The *watermark* of an instrument is the
newest ``ts_event`` seen. A bar is emitted (version 0) once the watermark reaches its end. Until the
watermark passes ``end + allowed_lateness`` the bar stays open for corrections: a late trade for it
updates the bar and re-emits it with ``version + 1``. A trade for a bar that is already final is
rejected (:class:`TooLate`) so the caller can count it and dead-letter it.

Open and close are the trades with the smallest and largest ``(ts_event, trade_id)``, so a late
trade that happened before the first one seen becomes the open. That equals pandas
``resample(...).first()/.last()`` over the trades sorted by ``(ts_event, trade_id)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from schemas.decimals import decimal_text
from streams.features.decimals import EXACT

INTERVALS_NS = {"1s": 1_000_000_000, "1m": 60_000_000_000}


@dataclass
class BarAccumulator:
    """One bar being built; prices and quantities exact."""

    start: int
    end: int
    open_key: tuple[int, int]
    close_key: tuple[int, int]
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal
    trade_count: int
    first_trade_id: int
    last_trade_id: int
    ts_event: int
    ts_recv: int
    version: int = -1

    @classmethod
    def first(cls, start: int, end: int, trade: dict[str, Any], price: Decimal, qty: Decimal) -> BarAccumulator:
        """Open a bar with its first trade."""
        key = (trade["ts_event"], trade["trade_id"])
        return cls(
            start=start, end=end, open_key=key, close_key=key, open=price, high=price, low=price,
            close=price, volume=qty, quote_volume=EXACT.multiply(price, qty), trade_count=1,
            first_trade_id=trade["trade_id"], last_trade_id=trade["trade_id"],
            ts_event=trade["ts_event"], ts_recv=trade["ts_recv"],
        )

    def add(self, trade: dict[str, Any], price: Decimal, qty: Decimal) -> None:
        """Fold one more trade in."""
        key = (trade["ts_event"], trade["trade_id"])
        if key < self.open_key:
            self.open_key, self.open = key, price
        if key > self.close_key:
            self.close_key, self.close = key, price
        self.high = max(self.high, price)
        self.low = min(self.low, price)
        self.volume = EXACT.add(self.volume, qty)
        self.quote_volume = EXACT.add(self.quote_volume, EXACT.multiply(price, qty))
        self.trade_count += 1
        self.first_trade_id = min(self.first_trade_id, trade["trade_id"])
        self.last_trade_id = max(self.last_trade_id, trade["trade_id"])
        self.ts_event = max(self.ts_event, trade["ts_event"])
        self.ts_recv = max(self.ts_recv, trade["ts_recv"])

    @property
    def emitted(self) -> bool:
        """True once version 0 went out."""
        return self.version >= 0

    def record_fields(self) -> dict[str, Any]:
        """Return the Bar fields that depend only on the trades (no venue, interval or ts_emit)."""
        return {
            "start": self.start, "end": self.end,
            "open": decimal_text(self.open), "high": decimal_text(self.high), "low": decimal_text(self.low),
            "close": decimal_text(self.close), "volume": decimal_text(self.volume),
            "quote_volume": decimal_text(self.quote_volume),
            "vwap": decimal_text(EXACT.divide(self.quote_volume, self.volume) if self.volume else self.close),
            "trade_count": self.trade_count, "first_trade_id": self.first_trade_id,
            "last_trade_id": self.last_trade_id, "version": self.version,
            "ts_event": self.ts_event, "ts_recv": self.ts_recv,
        }

    def to_state(self) -> list[Any]:
        """JSON-able form."""
        return [
            self.start, self.end, list(self.open_key), list(self.close_key), str(self.open), str(self.high),
            str(self.low), str(self.close), str(self.volume), str(self.quote_volume), self.trade_count,
            self.first_trade_id, self.last_trade_id, self.ts_event, self.ts_recv, self.version,
        ]

    @classmethod
    def from_state(cls, s: list[Any]) -> BarAccumulator:
        """Inverse of :meth:`to_state`."""
        return cls(
            start=s[0], end=s[1], open_key=tuple(s[2]), close_key=tuple(s[3]), open=Decimal(s[4]),
            high=Decimal(s[5]), low=Decimal(s[6]), close=Decimal(s[7]), volume=Decimal(s[8]),
            quote_volume=Decimal(s[9]), trade_count=s[10], first_trade_id=s[11], last_trade_id=s[12],
            ts_event=s[13], ts_recv=s[14], version=s[15],
        )


@dataclass(frozen=True)
class TooLate:
    """The trade's bar is already final (watermark past its end plus the allowed lateness)."""

    reason: str


class BarBuilder:
    """Bars of one interval for one instrument."""

    def __init__(self, interval_ns: int, allowed_lateness_ns: int) -> None:
        self.interval_ns = interval_ns
        self.lateness_ns = allowed_lateness_ns
        self.watermark = -1
        self.bars: dict[int, BarAccumulator] = {}

    def add(self, trade: dict[str, Any]) -> list[dict[str, Any]] | TooLate:
        """Add one Trade record; return the bars (emissions and corrections) it releases, oldest first."""
        ts = trade["ts_event"]
        start = ts - ts % self.interval_ns
        end = start + self.interval_ns
        if end + self.lateness_ns <= self.watermark:
            return TooLate(f"trade at {ts} is past bar [{start}, {end}) + lateness; watermark {self.watermark}")
        price, qty = Decimal(trade["price"]), Decimal(trade["qty"])
        bar = self.bars.get(start)
        if bar is None:
            bar = self.bars[start] = BarAccumulator.first(start, end, trade, price, qty)
        else:
            bar.add(trade, price, qty)
        out: list[dict[str, Any]] = []
        if end <= self.watermark:
            # a correction (or the first trade of a bar that closed empty): release it now
            bar.version += 1
            out.append(bar.record_fields())
        if ts > self.watermark:
            self.watermark = ts
            for s in sorted(self.bars):
                b = self.bars[s]
                if b.end <= ts and not b.emitted:
                    b.version = 0
                    out.append(b.record_fields())
                if b.end + self.lateness_ns <= ts:
                    del self.bars[s]
        return out

    def flush(self) -> list[dict[str, Any]]:
        """Emit every bar that has not gone out yet; for the end of a finite input (tests, backfills)."""
        out = []
        for s in sorted(self.bars):
            bar = self.bars[s]
            if not bar.emitted:
                bar.version = 0
                out.append(bar.record_fields())
        return out

    def to_state(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"watermark": self.watermark, "bars": [b.to_state() for b in self.bars.values()]}

    @classmethod
    def from_state(cls, interval_ns: int, allowed_lateness_ns: int, state: dict[str, Any]) -> BarBuilder:
        """Rebuild a builder saved by :meth:`to_state`."""
        builder = cls(interval_ns, allowed_lateness_ns)
        builder.watermark = state["watermark"]
        builder.bars = {s[0]: BarAccumulator.from_state(s) for s in (state["bars"])}
        return builder
