"""One base/quote pair across venues: BBO and FeedEvent in -> CrossVenueBBO records out.

The state holds each venue instrument's latest best bid/offer and health. A record describes the
consolidated view over the *live* venues: the highest bid and the lowest ask (with the venues
quoting them and their summed size), the consolidated mid, and each venue's mid against it in bps.
A venue drops out, and is listed in ``stale`` with the reason, while

* ``md.health`` says its book is stale (``stale``/``gap``/``resync``/``crossed`` until ``recovered``;
  a stale event no newer, by ``ts_recv``, than the last ``recovered`` is an old one and ignored),
* its last BBO is older than ``max_age_ns`` on the pair's clock, the newest ``ts_recv`` of any input
  of the pair (input times, not the wall clock, so a replay gives the same records),
* its own BBO is crossed (bid above ask): the venue's data is wrong, not a trading opportunity.

A record goes out when an input changes the view (best prices, their venues, a live venue's mid, the
stale list); ``interval_ns`` throttles that per pair. Prices stay exact: mids are Decimal sums, bps
are the exact ratio rounded half-even to ``BPS_PLACES`` places.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from typing import Any

from streams.models.base import InputRef
from streams.pipelines.book import STALE_KINDS

BPS_PLACES = 4
CROSS_VENUE = "cross"  # the ``venue`` of a consolidated record; its symbol is BASE/QUOTE


def pair_of(base: str, quote: str) -> str:
    """The pair key ``BASE/QUOTE`` (upper case: venues spell assets alike but not always in the same case)."""
    return f"{base.upper()}/{quote.upper()}"


def mid_of(bid: Decimal, ask: Decimal) -> Decimal:
    """(bid + ask) / 2, exact (halving adds at most one digit, within the 60-digit context)."""
    with localcontext() as ctx:
        ctx.prec = 60
        return (bid + ask) / 2


def bps_of(mid: Decimal, reference: Decimal) -> Decimal:
    """(mid - reference) / reference * 1e4 rounded half-even to ``BPS_PLACES`` places, from the exact ratio."""
    num_n, num_d = (mid - reference).as_integer_ratio() if mid != reference else (0, 1)
    ref_n, ref_d = reference.as_integer_ratio()
    scale = 10_000 * 10**BPS_PLACES
    # value * 10**BPS_PLACES = (num_n / num_d) / (ref_n / ref_d) * scale = n / d, d > 0
    n, d = num_n * ref_d * scale, num_d * ref_n
    q, r = divmod(n, d)
    if 2 * r > d or (2 * r == d and q % 2):
        q += 1
    return Decimal(q).scaleb(-BPS_PLACES)


def text(value: Decimal) -> str:
    """Plain decimal text without exponent or trailing zeros."""
    t = format(value, "f")
    return t.rstrip("0").rstrip(".") if "." in t else t


@dataclass
class VenueState:
    """One venue instrument of the pair: its latest BBO and health."""

    venue: str
    symbol: str
    bid: str | None = None
    bid_qty: str | None = None
    ask: str | None = None
    ask_qty: str | None = None
    update_id: int = -1
    ts_event: int = 0
    ts_recv: int = -1
    health_stale_since: int | None = None
    health_kind: str = ""
    recovered_at: int = -1

    def stale_reason(self, clock: int, max_age_ns: int) -> tuple[str, int] | None:
        """Why this venue is out of the view, and since when (ns); None while it is live."""
        if self.health_stale_since is not None:
            return f"health:{self.health_kind}", self.health_stale_since
        if self.bid is None or self.ask is None:
            return None  # never quoted: nothing to show, nothing to say
        if max_age_ns and clock - self.ts_recv > max_age_ns:
            return "no_bbo", self.ts_recv
        if Decimal(self.bid) > Decimal(self.ask):
            return "crossed_bbo", self.ts_recv
        return None


@dataclass
class CrossOutcome:
    """The record (without ``ts_emit``) one input produced, or why none."""

    record: dict[str, Any] | None = None
    note: str | None = None


@dataclass
class PairState:
    """All venues of one pair, the pair's clock, the last emitted view and the applied inputs."""

    pair: str
    base: str
    quote: str
    venues: dict[str, VenueState] = field(default_factory=dict)  # by venue:symbol
    clock: int = -1
    last_view: list[Any] | None = None
    last_emit_recv: int | None = None
    offsets: dict[str, int] = field(default_factory=dict)

    def seen(self, ref: InputRef) -> bool:
        """True when this input (or a later one of its source partition) was already applied."""
        return ref.offset <= self.offsets.get(f"{ref.topic}:{ref.partition}", -1)

    def mark(self, ref: InputRef) -> None:
        """Remember ``ref`` as applied."""
        self.offsets[f"{ref.topic}:{ref.partition}"] = ref.offset

    def _venue(self, record: dict[str, Any]) -> VenueState:
        key = f"{record['venue']}:{record['symbol']}"
        if key not in self.venues:
            self.venues[key] = VenueState(record["venue"], record["symbol"])
        return self.venues[key]

    def on_bbo(self, bbo: dict[str, Any], ref: InputRef, max_age_ns: int, interval_ns: int) -> CrossOutcome:
        """Apply one BBO of a venue instrument of this pair."""
        v = self._venue(bbo)
        v.bid, v.bid_qty, v.ask, v.ask_qty = bbo["bid_price"], bbo["bid_qty"], bbo["ask_price"], bbo["ask_qty"]
        v.update_id, v.ts_event, v.ts_recv = bbo["update_id"], bbo["ts_event"], bbo["ts_recv"]
        return self._emit(bbo, ref, max_age_ns, interval_ns)

    def on_health(self, event: dict[str, Any], ref: InputRef, max_age_ns: int, interval_ns: int) -> CrossOutcome:
        """Apply one per-symbol FeedEvent of a venue instrument of this pair."""
        v = self._venue(event)
        kind = event["kind"]
        if kind in STALE_KINDS and event["ts_recv"] > v.recovered_at:
            if v.health_stale_since is None:
                v.health_stale_since, v.health_kind = event["ts_recv"], kind
        elif kind == "recovered":
            v.recovered_at = max(v.recovered_at, event["ts_recv"])
            v.health_stale_since, v.health_kind = None, ""
        # any other kind still moves the pair's clock, which may age a silent venue out
        return self._emit(event, ref, max_age_ns, interval_ns)

    def _emit(self, trigger: dict[str, Any], ref: InputRef, max_age_ns: int, interval_ns: int) -> CrossOutcome:
        self.clock = max(self.clock, trigger["ts_recv"])
        record = self.view_record(max_age_ns)
        if record is None:
            return CrossOutcome(note="no_venue")
        view = [record["bid_price"], record["bid_venues"], record["ask_price"], record["ask_venues"],
                [[q["venue"], q["symbol"], q["mid"]] for q in record["quotes"]],
                [[s["venue"], s["symbol"], s["reason"]] for s in record["stale"]]]  # lists: as JSON gives it back
        if view == self.last_view:
            return CrossOutcome(note="view_unchanged")
        if interval_ns and self.last_emit_recv is not None and self.clock - self.last_emit_recv < interval_ns:
            return CrossOutcome(note="throttled")
        self.last_view, self.last_emit_recv = view, self.clock
        record.update({
            "trigger_venue": trigger["venue"], "trigger_symbol": trigger["symbol"], "source_topic": ref.topic,
            "source_partition": ref.partition, "source_offset": ref.offset,
            "ts_event": trigger["ts_event"], "ts_recv": trigger["ts_recv"],
        })
        return CrossOutcome(record=record)

    def view_record(self, max_age_ns: int) -> dict[str, Any] | None:
        """The consolidated fields of a CrossVenueBBO at the pair's clock; None when no venue has anything to say."""
        live: list[VenueState] = []
        stale: list[dict[str, Any]] = []
        for key in sorted(self.venues):
            v = self.venues[key]
            reason = v.stale_reason(self.clock, max_age_ns)
            if reason is not None:
                stale.append({"venue": v.venue, "symbol": v.symbol, "reason": reason[0], "since": reason[1]})
            elif v.bid is not None:
                live.append(v)
        if not live and not stale:
            return None
        record: dict[str, Any] = {
            "venue": CROSS_VENUE, "symbol": self.pair, "base": self.base, "quote": self.quote,
            "bid_price": None, "bid_qty": None, "bid_venues": "", "ask_price": None, "ask_qty": None,
            "ask_venues": "", "mid": None, "quotes": [], "stale": stale,
        }
        if live:
            quotes = [(v, Decimal(v.bid), Decimal(v.ask)) for v in live]  # type: ignore[arg-type]
            best_bid, best_ask = max(q[1] for q in quotes), min(q[2] for q in quotes)
            mid = mid_of(best_bid, best_ask)
            record.update({
                "bid_price": text(best_bid), "bid_qty": text(sum(Decimal(v.bid_qty) for v, b, _ in quotes if b == best_bid)),  # type: ignore[arg-type]
                "bid_venues": ",".join(sorted({v.venue for v, b, _ in quotes if b == best_bid})),
                "ask_price": text(best_ask), "ask_qty": text(sum(Decimal(v.ask_qty) for v, _, a in quotes if a == best_ask)),  # type: ignore[arg-type]
                "ask_venues": ",".join(sorted({v.venue for v, _, a in quotes if a == best_ask})),
                "mid": text(mid),
                "quotes": [
                    {"venue": v.venue, "symbol": v.symbol, "bid_price": v.bid, "ask_price": v.ask,
                     "mid": text(mid_of(b, a)), "bps_vs_mid": text(bps_of(mid_of(b, a), mid)),
                     "update_id": v.update_id, "recv": v.ts_recv}
                    for v, b, a in quotes
                ],
            })
        return record

    def to_state(self) -> dict[str, Any]:
        """JSON-able form for the changelog."""
        return {
            "pair": self.pair, "base": self.base, "quote": self.quote,
            "venues": {k: vars(v) for k, v in self.venues.items()}, "clock": self.clock,
            "last_view": self.last_view, "last_emit_recv": self.last_emit_recv, "offsets": self.offsets,
        }

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> PairState:
        """Inverse of :meth:`to_state`."""
        return cls(
            pair=s["pair"], base=s["base"], quote=s["quote"],
            venues={k: VenueState(**v) for k, v in s["venues"].items()}, clock=s["clock"],
            last_view=s["last_view"], last_emit_recv=s["last_emit_recv"], offsets=s["offsets"],
        )
