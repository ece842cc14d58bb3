"""The order state machine: one module-level transition table, nothing else branches on status.

Every change to an order goes through :meth:`Order.apply`, which fires the transition first (raising
:class:`InvalidStateTrigger` for an illegal one) and mutates fields after, then returns the transition
so the engine can publish it as an ``OrderEvent``.  Venue snapshots (REST responses) are turned into
the trigger sequence they imply by :meth:`Order.sync`, so a repeated snapshot is a no-op.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from executor.commands import SubmitOrder


class OrderStatus(StrEnum):
    """Order states; the values are the ``OrderStatus`` symbols of ``OrderEvent.avsc``."""

    INITIALIZED = "initialized"  # local only: built, not yet checked by risk nor sent
    PENDING_NEW = "pending_new"
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    PENDING_CANCEL = "pending_cancel"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    DENIED = "denied"
    UNKNOWN = "unknown"


class OrderTrigger(StrEnum):
    """What happened to the order."""

    DENY = "deny"  # risk refused it
    SUBMIT = "submit"  # request sent to the venue
    ACCEPT = "accept"  # venue acknowledged (or a query found it)
    REJECT = "reject"  # venue refused it
    OUTCOME_UNKNOWN = "outcome_unknown"  # 5xx / timeout / dropped connection: venue state unknown
    NOT_FOUND = "not_found"  # a query by client order id proves the venue never took it
    PARTIAL_FILL = "partial_fill"
    FILL = "fill"
    CANCEL_REQUEST = "cancel_request"
    CANCEL_REJECT = "cancel_reject"  # venue refused the cancel: settle by query
    CANCEL = "cancel"
    EXPIRE = "expire"  # IOC remainder, or the venue expired it


S, T = OrderStatus, OrderTrigger

TRANSITIONS: dict[tuple[OrderStatus, OrderTrigger], OrderStatus] = {
    (S.INITIALIZED, T.DENY): S.DENIED,
    (S.INITIALIZED, T.SUBMIT): S.PENDING_NEW,
    (S.PENDING_NEW, T.ACCEPT): S.NEW,
    (S.PENDING_NEW, T.REJECT): S.REJECTED,
    (S.PENDING_NEW, T.OUTCOME_UNKNOWN): S.UNKNOWN,
    (S.UNKNOWN, T.ACCEPT): S.NEW,
    (S.UNKNOWN, T.REJECT): S.REJECTED,
    (S.UNKNOWN, T.NOT_FOUND): S.REJECTED,  # the request never reached the matching engine
    (S.UNKNOWN, T.OUTCOME_UNKNOWN): S.UNKNOWN,  # the settling query itself failed
    (S.NEW, T.PARTIAL_FILL): S.PARTIALLY_FILLED,
    (S.NEW, T.FILL): S.FILLED,
    (S.NEW, T.CANCEL_REQUEST): S.PENDING_CANCEL,
    (S.NEW, T.CANCEL): S.CANCELED,  # unsolicited: venue or operator canceled it
    (S.NEW, T.EXPIRE): S.EXPIRED,
    (S.PARTIALLY_FILLED, T.PARTIAL_FILL): S.PARTIALLY_FILLED,
    (S.PARTIALLY_FILLED, T.FILL): S.FILLED,
    (S.PARTIALLY_FILLED, T.CANCEL_REQUEST): S.PENDING_CANCEL,
    (S.PARTIALLY_FILLED, T.CANCEL): S.CANCELED,
    (S.PARTIALLY_FILLED, T.EXPIRE): S.EXPIRED,
    (S.PENDING_CANCEL, T.PARTIAL_FILL): S.PENDING_CANCEL,  # fills race the cancel
    (S.PENDING_CANCEL, T.FILL): S.FILLED,
    (S.PENDING_CANCEL, T.CANCEL): S.CANCELED,
    (S.PENDING_CANCEL, T.EXPIRE): S.EXPIRED,
    (S.PENDING_CANCEL, T.CANCEL_REJECT): S.UNKNOWN,  # usually already done: a query settles it
    (S.PENDING_CANCEL, T.OUTCOME_UNKNOWN): S.UNKNOWN,
    (S.CANCELED, T.FILL): S.FILLED,  # real world possibility: a fill reported after the cancel ack
}

TERMINAL: frozenset[OrderStatus] = frozenset({S.FILLED, S.CANCELED, S.REJECTED, S.EXPIRED, S.DENIED})
"""States no trigger leaves except the rare late-fill edge (CANCELED -> FILLED)."""

OPEN: frozenset[OrderStatus] = frozenset({S.NEW, S.PARTIALLY_FILLED, S.PENDING_CANCEL})
"""States in which the order rests on the venue."""

UNSETTLED: frozenset[OrderStatus] = frozenset({S.PENDING_NEW, S.UNKNOWN})
"""States in which only a query by client order id can tell what the venue did."""

VENUE_STATUS_TRIGGER: dict[str, OrderTrigger] = {
    "NEW": T.ACCEPT,
    "PARTIALLY_FILLED": T.ACCEPT,  # the fill part comes from executedQty
    "FILLED": T.ACCEPT,
    "PENDING_CANCEL": T.ACCEPT,
    "CANCELED": T.CANCEL,
    "REJECTED": T.REJECT,
    "EXPIRED": T.EXPIRE,
    "EXPIRED_IN_MATCH": T.EXPIRE,  # self-trade prevention expired it
}
"""Binance order status -> the terminal trigger it implies (fills are derived from executedQty)."""


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
    ) -> list[Transition]:
        """Apply the triggers a venue snapshot implies; return them (empty when nothing changed)."""
        out: list[Transition] = []
        if venue_order_id is not None:
            self.venue_order_id = venue_order_id
        final = VENUE_STATUS_TRIGGER.get(venue_status)
        if final is T.REJECT:
            return [self.apply(T.REJECT, reason=reason)] if self.can(T.REJECT) else []
        if self.can(T.ACCEPT):
            out.append(self.apply(T.ACCEPT))
        if executed_qty > self.filled_qty:
            self.filled_qty, self.quote_filled = executed_qty, quote_qty
            complete = executed_qty >= self.command.qty
            out.append(self.apply(T.FILL if complete else T.PARTIAL_FILL))
        if final is not None and final is not T.ACCEPT and self.can(final):
            out.append(self.apply(final, reason=reason))
        return out
