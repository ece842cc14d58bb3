"""Trade-flow features over bucket-aligned rolling event-time windows (1 s, 10 s, 60 s).

Trades are aggregated into fixed event-time buckets of ``bucket_ns`` (``StreamsSettings.flow_bucket_ms``,
which must divide one second): trade ``ts_event`` falls in bucket ``ts // bucket_ns``. With ``B`` the
bucket of the newest ``ts_event`` seen, the window of width ``W`` holds the trades whose bucket lies in
``(B - W / bucket_ns, B]``, i.e. ``(t - W, t]`` at bucket granularity: the current (partial) bucket
plus the ``W / bucket_ns - 1`` buckets before it. A late trade counts in every window that still
covers its bucket; one older than the 60 s window counts in none (its price still feeds the next
return). So the saved state is at most ``60 s / bucket_ns`` buckets of a few numbers each, however
fast trades arrive, rather than every trade of the last minute (which outgrew the 1 MB Kafka message
limit of the changelog at ~650 trades/s).

Each bucket keeps exact sums (buy/sell volume and count, price*qty, and the float sum of squared log
returns of its trades); each window keeps running sums that gain a trade when it arrives in a
covered bucket and lose a whole bucket when the window moves past it. Volumes are exact Decimals, so
the running sums equal the bucket sums with no residue; the squared returns are floats, clamped at 0
and reset when a window empties.

Realized volatility is ``sqrt(sum r_i^2)`` over the trades in the window, ``r_i`` the log return
from the previously applied trade (in arrival order, wherever its bucket) to trade ``i``, so returns
across bucket boundaries are exact. VWAP is ``sum(p*q)/sum(q)`` over the 60 s window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson

from streams.features.decimals import EXACT

SECOND_NS = 1_000_000_000
WINDOWS_S = (1, 10, 60)
_ZERO = Decimal(0)


@dataclass(slots=True)
class Sums:
    """Exact sums over a set of trades (one bucket or one window)."""

    buy_volume: Decimal = _ZERO
    sell_volume: Decimal = _ZERO
    buy_count: int = 0
    sell_count: int = 0
    quote_volume: Decimal = _ZERO
    sum_r2: float = 0.0

    def add_trade(self, qty: Decimal, is_buy: bool, quote: Decimal, r2: float) -> None:
        """Fold one trade in."""
        if is_buy:
            self.buy_volume = EXACT.add(self.buy_volume, qty)
            self.buy_count += 1
        else:
            self.sell_volume = EXACT.add(self.sell_volume, qty)
            self.sell_count += 1
        self.quote_volume = EXACT.add(self.quote_volume, quote)
        self.sum_r2 += r2

    def remove(self, other: Sums) -> None:
        """Take out the trades of ``other`` (a subset of these); back to exact zeros when none are left."""
        self.buy_count -= other.buy_count
        self.sell_count -= other.sell_count
        if self.buy_count + self.sell_count == 0:
            self.buy_volume = self.sell_volume = self.quote_volume = _ZERO
            self.sum_r2 = 0.0
            return
        self.buy_volume = EXACT.subtract(self.buy_volume, other.buy_volume)
        self.sell_volume = EXACT.subtract(self.sell_volume, other.sell_volume)
        self.quote_volume = EXACT.subtract(self.quote_volume, other.quote_volume)
        self.sum_r2 = max(0.0, self.sum_r2 - other.sum_r2)

    @property
    def volume(self) -> Decimal:
        """Base volume."""
        return self.buy_volume + self.sell_volume

    def volume_imbalance(self) -> float:
        """(buy - sell volume) / (buy + sell volume); 0 when empty."""
        total = self.volume
        return float((self.buy_volume - self.sell_volume) / total) if total else 0.0

    def count_imbalance(self) -> float:
        """(buy - sell count) / count; 0 when empty."""
        total = self.buy_count + self.sell_count
        return (self.buy_count - self.sell_count) / total if total else 0.0

    def to_state(self) -> list[Any]:
        """JSON-able form (exact: Decimal strings, the float as orjson writes it)."""
        return [str(self.buy_volume), str(self.sell_volume), self.buy_count, self.sell_count,
                str(self.quote_volume), self.sum_r2]

    @classmethod
    def from_state(cls, s: list[Any]) -> Sums:
        """Inverse of :meth:`to_state`."""
        return cls(Decimal(s[0]), Decimal(s[1]), s[2], s[3], Decimal(s[4]), s[5])


@dataclass(slots=True)
class _Bucket:
    """One bucket's sums and their saved form, serialized once per change rather than once per save."""

    sums: Sums = field(default_factory=Sums)
    saved: orjson.Fragment | None = None


@dataclass(frozen=True)
class FlowFeatureValues:
    """The numeric part of a FlowFeatures record."""

    fields: dict[str, float]


class FlowState:
    """Buckets and window sums of one instrument."""

    def __init__(self, bucket_ns: int) -> None:
        if bucket_ns <= 0 or SECOND_NS % bucket_ns:
            raise ValueError(f"flow bucket width {bucket_ns} ns must divide one second")
        self.bucket_ns = bucket_ns
        self.widths = tuple(s * SECOND_NS // bucket_ns for s in WINDOWS_S)  # in buckets
        self.windows = tuple(Sums() for _ in WINDOWS_S)
        self.buckets: dict[int, _Bucket] = {}
        self.newest_bucket: int | None = None
        self.last_price = 0.0

    def add(self, trade: dict[str, Any]) -> FlowFeatureValues:
        """Add one Trade record and return the features after it."""
        price, qty = Decimal(trade["price"]), Decimal(trade["qty"])
        fprice = float(price)
        r2 = math.log(fprice / self.last_price) ** 2 if self.last_price > 0 and fprice > 0 else 0.0
        self.last_price = fprice
        index = trade["ts_event"] // self.bucket_ns
        if self.newest_bucket is None or index > self.newest_bucket:
            self._advance(index)
        newest = self.newest_bucket
        assert newest is not None
        if index > newest - self.widths[-1]:
            is_buy, quote = trade["side"] == "buy", EXACT.multiply(price, qty)
            bucket = self.buckets.get(index)
            if bucket is None:
                bucket = self.buckets[index] = _Bucket()
            bucket.sums.add_trade(qty, is_buy, quote, r2)
            bucket.saved = None
            for width, window in zip(self.widths, self.windows, strict=True):
                if index > newest - width:
                    window.add_trade(qty, is_buy, quote, r2)
        return self.features()

    def _advance(self, newest: int) -> None:
        """Move the windows to end at bucket ``newest``, dropping the buckets they no longer cover."""
        old = self.newest_bucket
        self.newest_bucket = newest
        if old is None:
            return
        for width, window in zip(self.widths, self.windows, strict=True):
            old_start, new_start = old - width + 1, newest - width + 1
            if new_start - old_start <= len(self.buckets):
                leaving = [i for i in range(old_start, new_start) if i in self.buckets]
            else:  # a long pause: look at the few buckets there are instead of the long range
                leaving = [i for i in self.buckets if old_start <= i < new_start]
            for i in leaving:
                window.remove(self.buckets[i].sums)
        oldest_kept = newest - self.widths[-1] + 1
        for i in [i for i in self.buckets if i < oldest_kept]:
            del self.buckets[i]

    def features(self) -> FlowFeatureValues:
        """Return the current features keyed as in FlowFeatures.avsc."""
        w1, w10, w60 = self.windows
        volume60 = w60.volume
        return FlowFeatureValues({
            "volume_imbalance_1s": w1.volume_imbalance(),
            "volume_imbalance_10s": w10.volume_imbalance(),
            "volume_imbalance_60s": w60.volume_imbalance(),
            "count_imbalance_1s": w1.count_imbalance(),
            "count_imbalance_10s": w10.count_imbalance(),
            "count_imbalance_60s": w60.count_imbalance(),
            "signed_volume_60s": float(w60.buy_volume - w60.sell_volume),
            "realized_vol_60s": math.sqrt(w60.sum_r2),
            "vwap_60s": float(w60.quote_volume / volume60) if volume60 else 0.0,
        })

    def to_state(self) -> dict[str, Any]:
        """Return an orjson-serializable form that restores exactly (running float sums included)."""
        buckets = []
        for index, bucket in self.buckets.items():
            if bucket.saved is None:
                bucket.saved = orjson.Fragment(orjson.dumps([index, *bucket.sums.to_state()]))
            buckets.append(bucket.saved)
        return {
            "bucket_ns": self.bucket_ns,
            "newest_bucket": self.newest_bucket,
            "last_price": self.last_price,
            "buckets": buckets,
            "windows": [w.to_state() for w in self.windows],
        }

    @classmethod
    def from_state(cls, bucket_ns: int, state: dict[str, Any]) -> FlowState:
        """Rebuild a state saved by :meth:`to_state`.

        A state saved with another bucket width (or by the old per-trade format, which has none)
        cannot be re-bucketed exactly, so the windows start empty and fill again within 60 s.
        """
        flow = cls(bucket_ns)
        if state.get("bucket_ns") != bucket_ns:
            return flow
        flow.newest_bucket = state["newest_bucket"]
        flow.last_price = state["last_price"]
        flow.buckets = {item[0]: _Bucket(Sums.from_state(item[1:])) for item in state["buckets"]}
        flow.windows = tuple(Sums.from_state(w) for w in state["windows"])
        return flow
