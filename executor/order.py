"""The order state machine: one module-level transition table, nothing else branches on status.

Every change to an order goes through :meth:`Order.apply`, which fires the transition first (raising
:class:`InvalidStateTrigger` for an illegal one) and mutates fields after, then returns the transition
so the engine can publish it as an ``OrderEvent``.  Venue snapshots (REST responses) are turned into
the trigger sequence they imply by :meth:`Order.sync` (:func:`venue_triggers`), which checks the whole
sequence against the table before it changes anything, so a repeated snapshot is a no-op and a refused
one leaves the order as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from executor.commands import SubmitOrder
from schemas.order_status import OPEN, TERMINAL, UNSETTLED, OrderStatus


class OrderTrigger(StrEnum):
    """What happened to the order."""

    DENY = "deny"  # risk refused it
    SUBMIT = "submit"  # request sent to the venue
    ACCEPT = "accept"  # venue acknowledged (or a query found it)
    REJECT = "reject"  # venue refused it
    OUTCOME_UNKNOWN = "outcome_unknown"  # 5xx / timeout / dropped connection: venue state unknown
    NOT_FOUND = "not_found"  # not at the venue although the request can no longer execute (recvWindow past)
    PARTIAL_FILL = "partial_fill"
    FILL = "fill"
    CANCEL_REQUEST = "cancel_request"
    CANCEL_REJECT = "cancel_reject"  # the venue shows the order still resting, unfilled: the cancel failed
    CANCEL_REJECT_PARTIAL = "cancel_reject_partial"  # the same for an order with fills
    CANCEL = "cancel"
    EXPIRE = "expire"  # IOC remainder, or the venue expired it


S, T = OrderStatus, OrderTrigger

TRANSITIONS: dict[tuple[OrderStatus, OrderTrigger], OrderStatus] = {
    (S.INITIALIZED, T.DENY): S.DENIED,
    (S.INITIALIZED, T.SUBMIT): S.PENDING_NEW,
    (S.PENDING_NEW, T.ACCEPT): S.NEW,
    (S.PENDING_NEW, T.REJECT): S.REJECTED,
    (S.PENDING_NEW, T.OUTCOME_UNKNOWN): S.UNKNOWN,
    # a fill report overtaking the acknowledgement (a marketable order matched at once, ack still in flight)
    (S.PENDING_NEW, T.PARTIAL_FILL): S.PARTIALLY_FILLED,
    (S.PENDING_NEW, T.FILL): S.FILLED,
    (S.UNKNOWN, T.ACCEPT): S.NEW,
    (S.UNKNOWN, T.REJECT): S.REJECTED,
    # "not found" counts only once the request's timestamp + recvWindow has passed on the venue's clock:
    # from then on the venue drops it, so it never reached (and never will reach) the matching engine
    (S.UNKNOWN, T.NOT_FOUND): S.REJECTED,
    (S.UNKNOWN, T.OUTCOME_UNKNOWN): S.UNKNOWN,  # the settling query itself failed
    # a late report of what the venue did with a request whose answer was lost (held, then executed)
    (S.UNKNOWN, T.PARTIAL_FILL): S.PARTIALLY_FILLED,
    (S.UNKNOWN, T.FILL): S.FILLED,
    (S.UNKNOWN, T.CANCEL): S.CANCELED,  # placed, then canceled by the kill switch or an operator before we knew
    (S.UNKNOWN, T.EXPIRE): S.EXPIRED,  # an IOC that took nothing
    (S.NEW, T.PARTIAL_FILL): S.PARTIALLY_FILLED,
    (S.NEW, T.FILL): S.FILLED,
    (S.NEW, T.CANCEL_REQUEST): S.PENDING_CANCEL,
    (S.NEW, T.CANCEL): S.CANCELED,  # unsolicited: venue or operator canceled it
    (S.NEW, T.EXPIRE): S.EXPIRED,
    (S.PARTIALLY_FILLED, T.PARTIAL_FILL): S.PARTIALLY_FILLED,
    (S.PARTIALLY_FILLED, T.FILL): S.FILLED,
    (S.PARTIALLY_FILLED, T.CANCEL_REQUEST): S.PENDING_CANCEL,
    (S.PARTIALLY_FILLED, T.CANCEL): S.CANCELED,  # unsolicited, with fills kept
    (S.PARTIALLY_FILLED, T.EXPIRE): S.EXPIRED,  # IOC remainder after a partial take
    (S.PENDING_CANCEL, T.PARTIAL_FILL): S.PENDING_CANCEL,  # fills race the cancel; its answer is still due
    (S.PENDING_CANCEL, T.FILL): S.FILLED,  # the order filled before the cancel reached the matching engine
    (S.PENDING_CANCEL, T.CANCEL): S.CANCELED,
    (S.PENDING_CANCEL, T.EXPIRE): S.EXPIRED,
    # the cancel was refused (rate limit, -2011 race) or lost, and the venue still shows the order resting
    (S.PENDING_CANCEL, T.CANCEL_REJECT): S.NEW,
    (S.PENDING_CANCEL, T.CANCEL_REJECT_PARTIAL): S.PARTIALLY_FILLED,
    # real world possibility: a fill that happened before the cancel (or the expiry) reported after it;
    # the venue's own terminal report follows (sync applies it right after)
    (S.CANCELED, T.PARTIAL_FILL): S.PARTIALLY_FILLED,
    (S.CANCELED, T.FILL): S.FILLED,
    (S.EXPIRED, T.PARTIAL_FILL): S.PARTIALLY_FILLED,
    (S.EXPIRED, T.FILL): S.FILLED,
    # Not in the table on purpose: REJECTED -> anything (a "not found" is only accepted once the request
    # cannot execute any more, so a rejected order never appears later); FILLED / DENIED -> anything.
    # A refused transition leaves the order managed by the engine (kept live, queried again).
}

VENUE_FINAL_TRIGGER: dict[str, OrderTrigger] = {
    "CANCELED": T.CANCEL,
    "EXPIRED": T.EXPIRE,
    "EXPIRED_IN_MATCH": T.EXPIRE,  # self-trade prevention expired it
}
"""Binance terminal order status -> the trigger it implies (fills are derived from executedQty)."""

VENUE_RESTING: frozenset[str] = frozenset({"NEW", "PARTIALLY_FILLED", "PENDING_CANCEL"})
"""Binance statuses of an order still on the book."""


class InvalidStateTrigger(Exception):
    """A trigger that the transition table does not allow in the current state."""

    retriable = False

    def __init__(self, status: OrderStatus, trigger: OrderTrigger) -> None:
        super().__init__(f"{status} -> {trigger}")
        self.status = status
        self.trigger = trigger


@dataclass(frozen=True)
class Transition:
    """One applied transition: what the engine publishes as an ``OrderEvent``."""

    seq: int
    previous: OrderStatus
    status: OrderStatus
    trigger: OrderTrigger
    reason: str | None = None
    error_code: int | None = None


@dataclass
class Order:
    """One order: the command that created it plus everything the venue told us since."""

    command: SubmitOrder
    status: OrderStatus = OrderStatus.INITIALIZED
    filled_qty: Decimal = Decimal(0)
    quote_filled: Decimal = Decimal(0)
    venue_order_id: str | None = None
    seq: int = 0
    history: list[Transition] = field(default_factory=list)
    # hop stamps carried by the order's events (ns): the signal's broker append time, when the executor
    # took the signal, when the last request for this order left for the venue
    signal_ack_ns: int | None = None
    taken_ns: int | None = None
    sent_ns: int | None = None

    @property
    def client_order_id(self) -> str:
        """The order's deterministic id."""
        return self.command.client_order_id

    @property
    def is_terminal(self) -> bool:
        """True once no further venue change is expected."""
        return self.status in TERMINAL

    @property
    def is_open(self) -> bool:
        """True while the order rests on the venue."""
        return self.status in OPEN

    @property
    def is_unsettled(self) -> bool:
        """True while only a query by client order id can tell the venue's state."""
        return self.status in UNSETTLED

    @property
    def avg_price(self) -> Decimal | None:
        """Average fill price, or None before any fill."""
        return self.quote_filled / self.filled_qty if self.filled_qty else None

    def can(self, trigger: OrderTrigger) -> bool:
        """True if ``trigger`` is legal now."""
        return (self.status, trigger) in TRANSITIONS

    def apply(
        self, trigger: OrderTrigger, reason: str | None = None, error_code: int | None = None
    ) -> Transition:
        """Fire ``trigger``: transition first, then record it; raise :class:`InvalidStateTrigger` if illegal."""
        try:
            target = TRANSITIONS[(self.status, trigger)]
        except KeyError:
            raise InvalidStateTrigger(self.status, trigger) from None
        transition = Transition(self.seq, self.status, target, trigger, reason, error_code)
        self.status = target
        self.seq += 1
        self.history.append(transition)
        return transition

    def sync(
        self,
        venue_status: str,
        executed_qty: Decimal,
        quote_qty: Decimal,
        venue_order_id: str | None,
        reason: str | None = None,
        cancel_answered: bool = True,
    ) -> list[Transition]:
        """Apply the triggers a venue snapshot implies; return them (empty when nothing changed).

        Every trigger goes through the table before any field changes: an illegal one raises
        :class:`InvalidStateTrigger` and leaves the order exactly as it was.  ``cancel_answered``: see
        :func:`venue_triggers`.
        """
        triggers = venue_triggers(self.status, self.filled_qty, self.command.qty, venue_status, executed_qty,
                                  cancel_answered)
        status = self.status
        for trigger in triggers:  # check the whole path first
            target = TRANSITIONS.get((status, trigger))
            if target is None:
                raise InvalidStateTrigger(status, trigger)
            status = target
        out = [self.apply(t, reason=reason if t in _WITH_REASON else None) for t in triggers]
        if venue_order_id is not None:
            self.venue_order_id = venue_order_id
        if executed_qty > self.filled_qty:
            self.filled_qty, self.quote_filled = executed_qty, quote_qty
        return out


_WITH_REASON = frozenset({T.REJECT, T.CANCEL, T.EXPIRE})


def venue_triggers(
    status: OrderStatus, filled_qty: Decimal, qty: Decimal, venue_status: str, executed_qty: Decimal,
    cancel_answered: bool = True,
) -> list[OrderTrigger]:
    """The triggers that take an order at ``status`` (``filled_qty`` of ``qty`` known) to a venue snapshot.

    The acknowledgement first (an unsettled order the venue holds), then the fill the executed quantity
    implies, then the venue's terminal status or, for an order we asked to cancel that still rests, the
    failed cancel.  A snapshot that tells nothing new gives no trigger, so a repeat is a no-op.  Only a
    snapshot taken after our cancel was answered (``cancel_answered``: a query, the cancel's answer) can
    prove the cancel failed; an ``executionReport`` of a fill that raced the cancel cannot.
    """
    if venue_status == "REJECTED":
        return [] if status is S.REJECTED else [T.REJECT]
    out: list[OrderTrigger] = []
    state = status
    if state in UNSETTLED:
        out.append(T.ACCEPT)
        state = S.NEW
    if executed_qty > filled_qty:
        trigger = T.FILL if executed_qty >= qty else T.PARTIAL_FILL
        out.append(trigger)
        state = TRANSITIONS.get((state, trigger), state)
    final = VENUE_FINAL_TRIGGER.get(venue_status)
    if final is not None and state is not TRANSITIONS.get((S.NEW, final)):
        out.append(final)
    elif venue_status in VENUE_RESTING and state is S.PENDING_CANCEL:
        if cancel_answered:
            out.append(T.CANCEL_REJECT_PARTIAL if executed_qty > 0 else T.CANCEL_REJECT)
    elif venue_status in VENUE_RESTING and state not in OPEN:
        out.append(T.ACCEPT)  # resting on the venue but not for us: the table refuses it
    return out
