"""Deterministic synthetic market data (BookDelta + Trade records) for tests and benchmarks.

A seeded random walk per instrument with trending regimes, so the baseline model fires now and then:
in an up regime bids are added at the top and asks thinned, and trades lean to the buy side. A small
share of trades arrives late (event time in the past) to exercise bar corrections and the dlq.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from schemas.topics import Topic

T0_NS = 1_700_000_000_000_000_000


@dataclass(frozen=True)
class MarketEvent:
    """One record to publish: topic, key and the Avro record dict."""

    topic: Topic
    key: bytes
    record_name: str
    record: dict[str, Any]


def _levels(levels: dict[int, int], tick: Decimal, lot: Decimal, best_first: bool) -> list[dict[str, str]]:
    ordered = sorted(levels, reverse=best_first)
    return [{"price": str(tick * p), "qty": str(lot * levels[p])} for p in ordered]


def market(
    symbols: list[str], events_per_symbol: int, seed: int = 1, step_ns: int = 10_000_000,
    late_share: float = 0.02, late_ns: int = 1_500_000_000, venue: str = "binance",
) -> Iterator[MarketEvent]:
    """Yield ``events_per_symbol`` book or trade events per symbol, interleaved, in event-time order."""
    rng = random.Random(seed)
    tick, lot = Decimal("0.01"), Decimal("0.001")
    state = {}
    for i, sym in enumerate(symbols):
        mid = 3_000_000 + 100_000 * i
        bids = {mid - k: rng.randint(1, 50) for k in range(1, 21)}
        asks = {mid + k: rng.randint(1, 50) for k in range(1, 21)}
        state[sym] = {"bids": bids, "asks": asks, "uid": 1000, "tid": 1, "regime": 0, "ts": T0_NS}
    for n in range(events_per_symbol):
        for sym in symbols:
            st = state[sym]
            key = f"{venue}:{sym}".encode()
            st["ts"] += step_ns
            ts = st["ts"]
            if n == 0:
                st["uid"] += 1
                yield MarketEvent(Topic.BOOK, key, "BookDelta", {
                    "venue": venue, "symbol": sym, "snapshot": True, "first_update_id": st["uid"],
                    "last_update_id": st["uid"], "bids": _levels(st["bids"], tick, lot, True),
                    "asks": _levels(st["asks"], tick, lot, False), "ts_event": ts, "ts_recv": ts + 1_000_000,
                })
                continue
            if n % 200 == 0:
                st["regime"] = rng.choice((-1, 0, 1))
            if rng.random() < 0.3:
                yield _trade(rng, st, venue, sym, key, tick, lot, ts, late_share, late_ns)
            else:
                yield _delta(rng, st, venue, sym, key, tick, lot, ts)


def _trade(rng: random.Random, st: dict, venue: str, sym: str, key: bytes, tick: Decimal, lot: Decimal,
           ts: int, late_share: float, late_ns: int) -> MarketEvent:
    buy_p = 0.5 + 0.3 * st["regime"]
    side = "buy" if rng.random() < buy_p else "sell"
    price = min(st["asks"]) if side == "buy" else max(st["bids"])
    event_ts = ts - rng.randint(1, late_ns) if rng.random() < late_share else ts
    st["tid"] += 1
    return MarketEvent(Topic.TRADES, key, "Trade", {
        "venue": venue, "symbol": sym, "trade_id": st["tid"], "price": str(tick * price),
        "qty": str(lot * rng.randint(1, 20)), "side": side, "ts_event": event_ts, "ts_recv": ts + 1_000_000,
    })


def _delta(rng: random.Random, st: dict, venue: str, sym: str, key: bytes, tick: Decimal, lot: Decimal,
           ts: int) -> MarketEvent:
    bids, asks, regime = st["bids"], st["asks"], st["regime"]
    changed_b: dict[int, int] = {}
    changed_a: dict[int, int] = {}
    best_b, best_a = max(bids), min(asks)
    grow_bid = rng.random() < 0.5 + 0.35 * regime
    if grow_bid:
        changed_b[best_b] = bids[best_b] + rng.randint(1, 10)
        changed_a[best_a] = max(0, asks[best_a] - rng.randint(1, 10))
    else:
        changed_a[best_a] = asks[best_a] + rng.randint(1, 10)
        changed_b[best_b] = max(0, bids[best_b] - rng.randint(1, 10))
    for side, changed in ((bids, changed_b), (asks, changed_a)):
        k = rng.choice(list(side))
        changed.setdefault(k, rng.randint(0, 50))
    for side, changed in ((bids, changed_b), (asks, changed_a)):
        for p, q in changed.items():
            if q == 0:
                side.pop(p, None)
            else:
                side[p] = q
    # keep both sides populated and uncrossed: refill one tick beyond the touch
    if not bids or len(bids) < 5:
        p = (max(bids) if bids else min(asks) - 1) - 1 if bids else min(asks) - 1
        bids[p] = changed_b[p] = rng.randint(1, 50)
    if not asks or len(asks) < 5:
        p = (min(asks) if asks else max(bids) + 1) + 1 if asks else max(bids) + 1
        asks[p] = changed_a[p] = rng.randint(1, 50)
    st["uid"] += 1
    return MarketEvent(Topic.BOOK, key, "BookDelta", {
        "venue": venue, "symbol": sym, "snapshot": False, "first_update_id": st["uid"],
        "last_update_id": st["uid"],
        "bids": [{"price": str(tick * p), "qty": str(lot * q)} for p, q in sorted(changed_b.items(), reverse=True)],
        "asks": [{"price": str(tick * p), "qty": str(lot * q)} for p, q in sorted(changed_a.items())],
        "ts_event": ts, "ts_recv": ts + 1_000_000,
    })
