"""The execution policy: a pure function from (intent, working order, visible book, clock) to one action.

Passive first: a LIMIT_MAKER at the best price, or ``improve_ticks`` inside it, never crossing.  A resting
order is canceled (and replaced by the next attempt) after ``passive_ttl``, when the market moves away by
``reprice_ticks``, when the signal expires, or when it is time to escalate.  Escalation to a marketable
IOC LIMIT happens only if the signal's urgency is at least ``cross_min_urgency``, after a passive window
of ``passive_window * (1 - urgency)`` (so urgency 1 crosses at once).  The IOC limit price is the worst
visible level needed for the size, never beyond ``max_slippage_bps`` from the best opposite price.  The
size shrinks to ``depth_fraction`` of the visible liquidity inside that bound when liquidity is thin.

Venue filters are the policy's hard edge: a ``Place`` always satisfies the instrument's PRICE_FILTER (tick,
min and max price), LOT_SIZE (step, min and max qty) and NOTIONAL (min, and max for limit orders).  Sizes
are only ever rounded *down* to the lot step (never past the signal's target); an order larger than the max
qty or max notional allows is cut to the largest that passes and the rest follows in later orders.  An
intent that cannot trade within them (target below min qty or min notional, price outside the allowed
range, or shrunk below the minimums by thin liquidity) is refused at once with :class:`Deny` (or, once part
of it filled, finished), never left waiting until it expires.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from executor.commands import OrderType, Side, TimeInForce
from executor.market import BookSnapshot, Level
from schemas.decimals import decimal_text

BPS = Decimal(10_000)


def _t(value: Decimal) -> str:
    """A decimal for a human reason: no exponent, no trailing zeros (``5.00000000`` -> ``5``)."""
    return decimal_text(value.normalize())


UNLIMITED = Decimal("Infinity")


@dataclass(frozen=True)
class InstrumentRules:
    """Venue trading rules of one instrument (exchangeInfo filters); a missing maximum is ``UNLIMITED``."""

    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    min_notional: Decimal
    max_qty: Decimal = UNLIMITED
    max_notional: Decimal = UNLIMITED
    min_price: Decimal = Decimal(0)
    max_price: Decimal = UNLIMITED

    def floor_price(self, price: Decimal) -> Decimal:
        """Round down to the tick."""
        return (price / self.tick_size).to_integral_value(ROUND_FLOOR) * self.tick_size

    def ceil_price(self, price: Decimal) -> Decimal:
        """Round up to the tick."""
        return (price / self.tick_size).to_integral_value(ROUND_CEILING) * self.tick_size

    def floor_qty(self, qty: Decimal) -> Decimal:
        """Round down to the lot step."""
        return (qty / self.step_size).to_integral_value(ROUND_FLOOR) * self.step_size

    def largest_qty(self, price: Decimal, qty: Decimal) -> Decimal:
        """``qty`` cut to what one limit order at ``price`` may carry (max qty, max notional), on the lot step."""
        return self.floor_qty(min(qty, self.max_qty, self.max_notional / price))

    def violation(self, price: Decimal, qty: Decimal) -> tuple[str, str] | None:
        """Return ``(filter, reason)`` for the first venue filter this limit order breaks, or None if it passes all."""
        if price <= 0 or price % self.tick_size != 0:
            return "price_filter", f"price {_t(price)} is not a positive multiple of the tick {_t(self.tick_size)} (PRICE_FILTER)"
        if price < self.min_price or price > self.max_price:
            return "price_filter", (
                f"price {_t(price)} outside [{_t(self.min_price)}, {_t(self.max_price)}] (PRICE_FILTER)"
            )
        if qty <= 0 or qty % self.step_size != 0:
            return "lot_size", f"qty {_t(qty)} is not a positive multiple of the lot step {_t(self.step_size)} (LOT_SIZE)"
        if qty < self.min_qty:
            return "lot_size", f"qty {_t(qty)} below the min qty {_t(self.min_qty)} (LOT_SIZE)"
        if qty > self.max_qty:
            return "lot_size", f"qty {_t(qty)} above the max qty {_t(self.max_qty)} (LOT_SIZE)"
        notional = f"notional {_t(price * qty)} ({_t(qty)} at {_t(price)})"
        if price * qty < self.min_notional:
            return "notional", f"{notional} below the min notional {_t(self.min_notional)} (NOTIONAL)"
        if price * qty > self.max_notional:
            return "notional", f"{notional} above the max notional {_t(self.max_notional)} (NOTIONAL)"
        return None


@dataclass(frozen=True)
class PolicyParams:
    """Policy knobs (from ``ExecutorSettings``)."""

    passive_ttl_ns: int
    reprice_ticks: int
    improve_ticks: int
    cross_min_urgency: float
    passive_window_ns: int
    max_slippage_bps: Decimal
    depth_fraction: Decimal


@dataclass(frozen=True)
class Intent:
    """What a signal still wants: ``target`` in base units, of which ``filled`` is done."""

    side: Side
    target: Decimal
    filled: Decimal
    urgency: float
    expires_at: int
    started_at: int


@dataclass(frozen=True)
class Working:
    """The order currently working for an intent."""

    order_type: OrderType
    time_in_force: TimeInForce | None
    price: Decimal
    placed_at: int


@dataclass(frozen=True)
class Wait:
    """Nothing to do now."""

    reason: str


@dataclass(frozen=True)
class Place:
    """Send a new order (the next attempt)."""

    order_type: OrderType
    time_in_force: TimeInForce | None
    price: Decimal
    qty: Decimal


@dataclass(frozen=True)
class Cancel:
    """Cancel the working order."""

    reason: str


@dataclass(frozen=True)
class Finish:
    """The intent is done; no further order."""

    reason: str


@dataclass(frozen=True)
class Deny:
    """Refuse the intent now: nothing filled and no order it could send would pass the venue's filters.

    ``check`` names the failed rule (``lot_size``, ``notional``, ``price_filter``, ``thin_liquidity``);
    ``price`` / ``qty`` are the order that would have gone out (``price`` None when no book was needed).
    """

    check: str
    reason: str
    price: Decimal | None
    qty: Decimal


Action = Wait | Place | Cancel | Finish | Deny


def should_cross(intent: Intent, params: PolicyParams, now: int) -> bool:
    """True once the intent may take liquidity: urgency allows it and its passive window is over."""
    if intent.urgency < params.cross_min_urgency:
        return False
    window = int(params.passive_window_ns * max(0.0, 1.0 - intent.urgency))
    return now - intent.started_at >= window


def slippage_bound(side: Side, best: Decimal, rules: InstrumentRules, params: PolicyParams) -> Decimal:
    """The worst limit price an IOC may carry: ``max_slippage_bps`` beyond the best opposite price."""
    move = best * params.max_slippage_bps / BPS
    return rules.floor_price(best + move) if side is Side.BUY else rules.ceil_price(best - move)


def marketable_limit(
    side: Side, qty: Decimal, levels: tuple[Level, ...], bound: Decimal, rules: InstrumentRules, fraction: Decimal
) -> tuple[Decimal, Decimal] | None:
    """Return ``(limit price, size)`` of an IOC taking visible depth up to ``bound``, or None if no lot fits.

    The size is at most ``fraction`` of the liquidity inside the bound; the price is the worst level
    that size needs, so the order cannot trade beyond what the visible book justifies.  The venue's
    filters are the caller's check (:meth:`InstrumentRules.violation`).
    """
    inside = [(p, q) for p, q in levels if (p <= bound if side is Side.BUY else p >= bound)]
    available = sum((q for _, q in inside), Decimal(0))
    size = rules.floor_qty(min(qty, available * fraction))
    if size <= 0:
        return None
    needed, price = Decimal(0), inside[0][0]
    for level_price, level_qty in inside:
        price = level_price
        needed += level_qty
        if needed >= size:
            break
    # book prices are on the tick already; rounding away from the bound keeps a stray one inside it
    return (rules.ceil_price(price) if side is Side.BUY else rules.floor_price(price)), size


def passive_price(side: Side, book: BookSnapshot, rules: InstrumentRules, params: PolicyParams) -> Decimal | None:
    """LIMIT_MAKER price: the best same-side price, improved by up to ``improve_ticks`` without crossing."""
    quote = book.quote
    if quote.bid >= quote.ask:
        return None
    if side is Side.BUY:
        price = min(quote.bid + params.improve_ticks * rules.tick_size, quote.ask - rules.tick_size)
        return rules.floor_price(price)
    price = max(quote.ask - params.improve_ticks * rules.tick_size, quote.bid + rules.tick_size)
    return rules.ceil_price(price)


def _moved_away(side: Side, working: Working, book: BookSnapshot, rules: InstrumentRules, ticks: int) -> bool:
    gap = book.quote.bid - working.price if side is Side.BUY else working.price - book.quote.ask
    return gap >= ticks * rules.tick_size


def decide(
    intent: Intent,
    working: Working | None,
    book: BookSnapshot | None,
    rules: InstrumentRules,
    params: PolicyParams,
    now: int,
) -> Action:
    """Return the next action for ``intent``; the engine applies it and asks again on the next event."""
    if working is not None:
        if working.time_in_force is TimeInForce.IOC:
            return Wait("IOC settling")
        if now >= intent.expires_at:
            return Cancel("signal expired")
        if should_cross(intent, params, now) and book is not None:
            return Cancel("escalate to IOC")
        if now - working.placed_at >= params.passive_ttl_ns:
            return Cancel("passive ttl reached")
        if book is not None and _moved_away(intent.side, working, book, rules, params.reprice_ticks):
            return Cancel("market moved away")
        return Wait("resting")
    remaining = rules.floor_qty(intent.target - intent.filled)
    if remaining <= 0 or remaining < rules.min_qty:
        if intent.filled > 0:
            return Finish("target reached")
        return Deny(
            "lot_size",
            f"target {_t(intent.target)} is {_t(remaining)} after rounding down to the lot step "
            f"{_t(rules.step_size)}, below the min qty {_t(rules.min_qty)} (LOT_SIZE)",
            None, intent.target,
        )
    if now >= intent.expires_at:
        return Finish("signal expired")
    if book is None:
        return Wait("no market data")
    cross = should_cross(intent, params, now)
    price = book.opposite(intent.side)[0][0] if cross else passive_price(intent.side, book, rules, params)
    if price is None:
        return Wait("crossed or locked book")
    # an IOC buy may fill up to its bound: its size must pass the max notional at that price too
    bound = slippage_bound(intent.side, price, rules, params) if cross else price
    size = rules.largest_qty(max(price, bound), remaining)
    refused = rules.violation(price, size)
    if refused is not None:  # no order of this intent can trade at this price: no shrinking can help
        return _untradable(intent, *refused, price, size)
    if cross:
        taken = marketable_limit(intent.side, size, book.opposite(intent.side), bound, rules, params.depth_fraction)
        action = Place(OrderType.LIMIT, TimeInForce.IOC, *(taken or (price, Decimal(0))))
    else:
        visible = sum((q for _, q in book.opposite(intent.side) + book.same(intent.side)), Decimal(0))
        action = Place(OrderType.LIMIT_MAKER, None, price, rules.floor_qty(min(size, visible * params.depth_fraction)))
    refused = rules.violation(action.price, action.qty)
    if refused is not None:
        return _untradable(intent, "thin_liquidity", f"liquidity too thin: order shrunk to depth: {refused[1]}",
                           action.price, action.qty)
    return action


def _untradable(intent: Intent, check: str, reason: str, price: Decimal, qty: Decimal) -> Deny | Finish:
    """Refuse an intent no order can serve; once part of it filled, finish it with the reason instead."""
    if intent.filled > 0:
        return Finish(f"remainder untradable: {reason}")
    return Deny(check, reason, price, qty)
