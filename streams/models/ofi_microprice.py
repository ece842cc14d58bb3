"""Baseline model: order-flow imbalance (OFI) confirmed by the microprice, with a cool-down.

OFI (Cont, Kukanov & Stoikov 2014) measures net pressure at the top of the book. For consecutive
tops ``(b, qb, a, qa)`` the contribution of one update is::

    e = qb_n * [b_n >= b_{n-1}] - qb_{n-1} * [b_n <= b_{n-1}]
        - qa_n * [a_n <= a_{n-1}] + qa_{n-1} * [a_n >= a_{n-1}]

Over an event-time window the model normalizes ``ofi = sum(e) / sum(|e|)`` into [-1, 1], and
measures where the microprice sits in the spread, ``dev = (microprice - mid) / (spread / 2)`` in
[-1, 1]. It says **buy** when both exceed their thresholds (sell when both are below minus them),
at most once per ``cooldown`` of event time per instrument, and only once the window holds at
least ``min_updates`` updates. ``strength = (ofi + dev) / 2``; ``urgency`` grows from 0 at the
threshold to 1 at full agreement. The signal's inputs are the first and the last book records of
the window, so its id is a function of the input offsets alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streams.models.base import BookObservation, Decision, InputRef


@dataclass(frozen=True)
class OfiMicropriceModel:
    """Parameters of the baseline model (see module docstring)."""

    window_ns: int = 1_000_000_000
    min_updates: int = 5
    ofi_threshold: float = 0.6
    microprice_threshold: float = 0.3
    cooldown_ns: int = 5_000_000_000
    name: str = "ofi_microprice/1"

    def new_state(self) -> dict[str, Any]:
        """Empty window, no previous top, no signal yet."""
        return {"prev": None, "window": [], "sum_e": 0.0, "sum_abs": 0.0, "last_signal_ts": None}

    def observe(self, state: dict[str, Any], obs: BookObservation) -> Decision | None:
        """Fold one observation into the window and decide."""
        prev = state["prev"]
        state["prev"] = [obs.bid, obs.bid_qty, obs.ask, obs.ask_qty]
        if prev is None:
            return None
        e = ofi_contribution(prev, state["prev"])
        window = state["window"]
        window.append([obs.ts_event, e, obs.source.topic, obs.source.partition, obs.source.offset])
        state["sum_e"] += e
        state["sum_abs"] += abs(e)
        horizon = obs.ts_event - self.window_ns
        drop = 0
        while drop < len(window) and window[drop][0] <= horizon:
            state["sum_e"] -= window[drop][1]
            state["sum_abs"] -= abs(window[drop][1])
            drop += 1
        if drop:
            del window[:drop]
        if not window:
            state["sum_e"] = state["sum_abs"] = 0.0
        if len(window) < self.min_updates or state["sum_abs"] <= 0 or obs.spread <= 0:
            return None
        last = state["last_signal_ts"]
        if last is not None and obs.ts_event - last < self.cooldown_ns:
            return None
        ofi = max(-1.0, min(1.0, state["sum_e"] / state["sum_abs"]))
        dev = max(-1.0, min(1.0, (obs.microprice - obs.mid) / (obs.spread / 2)))
        if ofi >= self.ofi_threshold and dev >= self.microprice_threshold:
            side = "buy"
        elif ofi <= -self.ofi_threshold and dev <= -self.microprice_threshold:
            side = "sell"
        else:
            return None
        state["last_signal_ts"] = obs.ts_event
        strength = (ofi + dev) / 2
        floor = (self.ofi_threshold + self.microprice_threshold) / 2
        urgency = max(0.0, min(1.0, (abs(strength) - floor) / (1 - floor))) if floor < 1 else 1.0
        first = window[0]
        return Decision(
            side=side,
            strength=strength,
            urgency=urgency,
            reference_price=obs.microprice,
            inputs=(InputRef(first[2], first[3], first[4]), obs.source),
            ts_event=obs.ts_event,
            ts_recv=obs.ts_recv,
        )


def ofi_contribution(prev: list[float], cur: list[float]) -> float:
    """Return one update's OFI term from the previous and the current ``[bid, bid_qty, ask, ask_qty]``."""
    pb, pqb, pa, pqa = prev
    b, qb, a, qa = cur
    e = 0.0
    if b >= pb:
        e += qb
    if b <= pb:
        e -= pqb
    if a <= pa:
        e -= qa
    if a >= pa:
        e += pqa
    return e
