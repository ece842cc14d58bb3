"""Trade-flow features over rolling event-time windows (1 s, 10 s, 60 s).

Each window is a deque of the trades whose ``ts_event`` lies in ``(newest - width, newest]`` with
running sums. Volumes are summed as exact Decimals so that adding and later removing a trade leaves
no rounding residue; only the squared log returns are floats (clamped at 0 and reset when the window
empties). A trade older than the newest one (late) is added like any other and leaves with the
first eviction pass that reaches it.

Realized volatility is ``sqrt(sum r_i^2)`` of the log returns between consecutive trades, each
return belonging to the later trade; VWAP is ``sum(p*q)/sum(q)`` over 60 s.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson

from streams.features.decimals import EXACT

SECOND_NS = 1_000_000_000
WINDOWS_S = (1, 10, 60)

# One trade as kept in a window: (ts_event, signed qty (+buy/-sell), price*qty, squared log return,
# its saved form as an orjson Fragment, serialized once on arrival so that saving the state after
# every batch only splices bytes).
_Entry = tuple[int, Decimal, Decimal, float, orjson.Fragment]


@dataclass
class FlowWindow:
    """Running sums over the trades of one window width."""

    width_ns: int
    entries: deque[_Entry] = field(default_factory=deque)
    buy_volume: Decimal = Decimal(0)
    sell_volume: Decimal = Decimal(0)
    buy_count: int = 0
    sell_count: int = 0
    quote_volume: Decimal = Decimal(0)
    sum_r2: float = 0.0

    def add(self, entry: _Entry) -> None:
        """Add one trade."""
        self.entries.append(entry)
        self._account(entry, 1)

    def evict(self, newest_ts: int) -> None:
        """Drop trades at or before ``newest_ts - width``."""
        horizon = newest_ts - self.width_ns
        entries = self.entries
        while entries and entries[0][0] <= horizon:
            self._account(entries.popleft(), -1)
        if not entries:
            self.buy_volume = self.sell_volume = self.quote_volume = Decimal(0)
            self.buy_count = self.sell_count = 0
            self.sum_r2 = 0.0

    def _account(self, entry: _Entry, sign: int) -> None:
        _, signed_qty, quote, r2, _ = entry
        if signed_qty >= 0:
            self.buy_volume = EXACT.add(self.buy_volume, sign * signed_qty)
            self.buy_count += sign
        else:
            self.sell_volume = EXACT.add(self.sell_volume, -sign * signed_qty)
            self.sell_count += sign
        self.quote_volume = EXACT.add(self.quote_volume, sign * quote)
        self.sum_r2 = max(0.0, self.sum_r2 + sign * r2)

    @property
    def volume(self) -> Decimal:
        """Base volume in the window."""
        return self.buy_volume + self.sell_volume

    def volume_imbalance(self) -> float:
        """(buy - sell volume) / (buy + sell volume); 0 when empty."""
        total = self.volume
        return float((self.buy_volume - self.sell_volume) / total) if total else 0.0

    def count_imbalance(self) -> float:
        """(buy - sell count) / count; 0 when empty."""
        total = self.buy_count + self.sell_count
        return (self.buy_count - self.sell_count) / total if total else 0.0


@dataclass(frozen=True)
class FlowFeatureValues:
    """The numeric part of a FlowFeatures record."""

    fields: dict[str, float]


@dataclass
class FlowState:
    """Rolling windows of one instrument."""

    windows: tuple[FlowWindow, ...] = field(
        default_factory=lambda: tuple(FlowWindow(s * SECOND_NS) for s in WINDOWS_S)
    )
    newest_ts: int = 0
    last_price: float = 0.0

    def add(self, trade: dict[str, Any]) -> FlowFeatureValues:
        """Add one Trade record and return the features after it."""
        price, qty, ts = Decimal(trade["price"]), Decimal(trade["qty"]), trade["ts_event"]
        fprice = float(price)
        r2 = math.log(fprice / self.last_price) ** 2 if self.last_price > 0 and fprice > 0 else 0.0
        self.last_price = fprice
        is_buy = trade["side"] == "buy"
        saved = orjson.Fragment(orjson.dumps([ts, trade["price"], trade["qty"], int(is_buy), r2]))
        entry: _Entry = (ts, qty if is_buy else -qty, EXACT.multiply(price, qty), r2, saved)
        self.newest_ts = max(self.newest_ts, ts)
        for window in self.windows:
            window.add(entry)
            window.evict(self.newest_ts)
        return self.features()

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
        """Return an orjson-serializable form that restores exactly (running float sums included).

        The shorter windows always hold a suffix of the 60 s window's trades (each evicts the longest
        prefix older than its horizon, and shorter horizons are later), so the trades are stored once.
        """
        longest = self.windows[-1]
        return {
            "newest_ts": self.newest_ts,
            "last_price": self.last_price,
            "trades": [e[4] for e in longest.entries],
            "windows": [
                {
                    "n": len(w.entries),
                    "sums": [str(w.buy_volume), str(w.sell_volume), str(w.quote_volume)],
                    "counts": [w.buy_count, w.sell_count],
                    "sum_r2": w.sum_r2,
                }
                for w in self.windows
            ],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> FlowState:
        """Rebuild a state saved by :meth:`to_state`."""
        entries = []
        for item in state["trades"]:
            ts, p, q, is_buy, r2 = item
            price, qty = Decimal(p), Decimal(q)
            saved = orjson.Fragment(orjson.dumps(item))
            entries.append((ts, qty if is_buy else -qty, EXACT.multiply(price, qty), r2, saved))
        windows = []
        for s, w in zip(WINDOWS_S, state["windows"], strict=True):
            buy, sell, quote = (Decimal(x) for x in w["sums"])
            windows.append(FlowWindow(
                width_ns=s * SECOND_NS, entries=deque(entries[len(entries) - w["n"]:]),
                buy_volume=buy, sell_volume=sell, buy_count=w["counts"][0], sell_count=w["counts"][1],
                quote_volume=quote, sum_r2=w["sum_r2"],
            ))
        return cls(windows=tuple(windows), newest_ts=state["newest_ts"], last_price=state["last_price"])
