"""An independent brute-force model of the cross-venue view, for the unit and integration tests.

Written from the record's definition, not from ``streams.pipelines.cross_venue``: rational arithmetic
(``Fraction``), Python's exact ``round(Fraction, 4)`` (half-even), every venue scanned every time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

STALE_KINDS = {"stale", "gap", "resync", "crossed"}


@dataclass
class Reference:
    """Replays inputs (dicts as on md.bbo / md.health) and says what view each leaves."""

    max_age_ns: int
    quotes: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    health: dict[tuple[str, str], tuple[str, int]] = field(default_factory=dict)
    recovered: dict[tuple[str, str], int] = field(default_factory=dict)
    seen: set[tuple[str, str]] = field(default_factory=set)
    clock: int = -1

    def apply(self, topic: str, rec: dict[str, Any]) -> None:
        """Take one input."""
        inst = (rec["venue"], rec["symbol"])
        self.seen.add(inst)
        self.clock = max(self.clock, rec["ts_recv"])
        if topic == "md.bbo":
            self.quotes[inst] = rec
        elif rec["kind"] in STALE_KINDS:
            if rec["ts_recv"] > self.recovered.get(inst, -1) and inst not in self.health:
                self.health[inst] = (rec["kind"], rec["ts_recv"])
        elif rec["kind"] == "recovered":
            self.recovered[inst] = max(self.recovered.get(inst, -1), rec["ts_recv"])
            self.health.pop(inst, None)

    def view(self) -> dict[str, Any] | None:
        """The expected view: numbers as Fractions, venues as sorted lists; None when nothing to say."""
        live, stale = [], []
        for inst in sorted(self.seen, key=lambda i: f"{i[0]}:{i[1]}"):
            q = self.quotes.get(inst)
            if inst in self.health:
                kind, since = self.health[inst]
                stale.append((inst[0], inst[1], f"health:{kind}", since))
            elif q is None:
                continue
            elif self.max_age_ns and self.clock - q["ts_recv"] > self.max_age_ns:
                stale.append((inst[0], inst[1], "no_bbo", q["ts_recv"]))
            elif Fraction(q["bid_price"]) > Fraction(q["ask_price"]):
                stale.append((inst[0], inst[1], "crossed_bbo", q["ts_recv"]))
            else:
                live.append((inst, q))
        if not live and not stale:
            return None
        out: dict[str, Any] = {"stale": stale, "bid": None, "ask": None, "mid": None, "bid_qty": None,
                               "ask_qty": None, "bid_venues": [], "ask_venues": [], "quotes": []}
        if live:
            bid = max(Fraction(q["bid_price"]) for _, q in live)
            ask = min(Fraction(q["ask_price"]) for _, q in live)
            mid = (bid + ask) / 2
            out.update(
                bid=bid, ask=ask, mid=mid,
                bid_qty=sum(Fraction(q["bid_qty"]) for _, q in live if Fraction(q["bid_price"]) == bid),
                ask_qty=sum(Fraction(q["ask_qty"]) for _, q in live if Fraction(q["ask_price"]) == ask),
                bid_venues=sorted({i[0] for i, q in live if Fraction(q["bid_price"]) == bid}),
                ask_venues=sorted({i[0] for i, q in live if Fraction(q["ask_price"]) == ask}),
            )
            for inst, q in live:
                vmid = (Fraction(q["bid_price"]) + Fraction(q["ask_price"])) / 2
                out["quotes"].append((inst[0], inst[1], vmid, round((vmid - mid) / mid * 10_000, 4)))
        return out


def emission_key(view: dict[str, Any] | None) -> Any:
    """What decides whether a view is new: prices, venues, live mids, stale venues and reasons (not sizes, not times)."""
    if view is None:
        return None
    return (view["bid"], view["ask"], view["bid_venues"], view["ask_venues"], [q[:3] for q in view["quotes"]],
            [s[:3] for s in view["stale"]])


def as_view(record: dict[str, Any]) -> dict[str, Any]:
    """A CrossVenueBBO record in the form of :meth:`Reference.view` (strings parsed exactly)."""
    def num(text: str | None) -> Fraction | None:
        return None if text is None else Fraction(text)

    return {
        "stale": [(s["venue"], s["symbol"], s["reason"], s["since"]) for s in record["stale"]],
        "bid": num(record["bid_price"]), "ask": num(record["ask_price"]), "mid": num(record["mid"]),
        "bid_qty": num(record["bid_qty"]), "ask_qty": num(record["ask_qty"]),
        "bid_venues": record["bid_venues"].split(",") if record["bid_venues"] else [],
        "ask_venues": record["ask_venues"].split(",") if record["ask_venues"] else [],
        "quotes": [(q["venue"], q["symbol"], Fraction(q["mid"]), Fraction(q["bps_vs_mid"])) for q in record["quotes"]],
    }
