"""The order state machine: every legal transition, every illegal one raises, random sequences stay legal."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from executor.commands import OrderType, Side, SubmitOrder, TimeInForce
from executor.order import (
    TRANSITIONS,
    InvalidStateTrigger,
    Order,
    OrderStatus,
    OrderTrigger,
)


def _order(status: OrderStatus = OrderStatus.INITIALIZED, qty: str = "2") -> Order:
    cmd = SubmitOrder(
        "tp-00-0-0", "sig", "binance", "BTCUSDT", Side.BUY, OrderType.LIMIT, TimeInForce.IOC,
        Decimal(100), Decimal(qty), 0, 0,
    )
    return Order(cmd, status=status)


@pytest.mark.parametrize(("status", "trigger"), sorted(TRANSITIONS))
def test_every_legal_transition_reaches_its_table_target(status: OrderStatus, trigger: OrderTrigger) -> None:
    order = _order(status)

    transition = order.apply(trigger, reason="r")

    assert order.status is TRANSITIONS[(status, trigger)]
    assert (transition.previous, transition.status, transition.seq) == (status, order.status, 0)
    assert order.seq == 1


ILLEGAL = [(s, t) for s in OrderStatus for t in OrderTrigger if (s, t) not in TRANSITIONS]


@pytest.mark.parametrize(("status", "trigger"), ILLEGAL)
def test_every_illegal_transition_raises_and_leaves_the_order_unchanged(
    status: OrderStatus, trigger: OrderTrigger
) -> None:
    order = _order(status)

    with pytest.raises(InvalidStateTrigger, match=f"^{status} -> {trigger}$"):
        order.apply(trigger)

    assert order.status is status and order.seq == 0 and not order.history


# Written out by hand from the venue's behaviour, not derived from TRANSITIONS: a missing or an extra
# edge fails test_the_table_is_exactly_the_hand_written_list.
HAND_WRITTEN: list[tuple[str, str, str, str]] = [
    # (from, trigger, to, when it happens)
    ("initialized", "deny", "denied", "risk or a venue filter refused it before sending"),
    ("initialized", "submit", "pending_new", "the POST is on its way"),
    ("pending_new", "accept", "new", "the venue acknowledged"),
    ("pending_new", "reject", "rejected", "the venue refused (filters, balance, post-only would take)"),
    ("pending_new", "outcome_unknown", "unknown", "5xx, timeout, dropped connection"),
    ("pending_new", "partial_fill", "partially_filled", "a fill report overtakes the ack"),
    ("pending_new", "fill", "filled", "a full fill report overtakes the ack"),
    ("unknown", "accept", "new", "the settling query finds it"),
    ("unknown", "reject", "rejected", "the settling query finds it rejected"),
    ("unknown", "not_found", "rejected", "not found after timestamp + recvWindow passed on the venue"),
    ("unknown", "outcome_unknown", "unknown", "the settling query failed too"),
    ("unknown", "partial_fill", "partially_filled", "a late partial fill of a request whose answer was lost"),
    ("unknown", "fill", "filled", "a late full fill of a request whose answer was lost"),
    ("unknown", "cancel", "canceled", "placed, then canceled (kill switch, operator) before we knew"),
    ("unknown", "expire", "expired", "an IOC that took nothing, answer lost"),
    ("new", "partial_fill", "partially_filled", "someone took part of it"),
    ("new", "fill", "filled", "someone took all of it"),
    ("new", "cancel_request", "pending_cancel", "we cancel (reprice, expiry, kill switch)"),
    ("new", "cancel", "canceled", "unsolicited cancel by the venue or an operator"),
    ("new", "expire", "expired", "IOC without a take, or the venue expired it"),
    ("partially_filled", "partial_fill", "partially_filled", "another part taken"),
    ("partially_filled", "fill", "filled", "the rest taken"),
    ("partially_filled", "cancel_request", "pending_cancel", "we cancel the remainder"),
    ("partially_filled", "cancel", "canceled", "unsolicited cancel of the remainder"),
    ("partially_filled", "expire", "expired", "IOC remainder expired"),
    ("pending_cancel", "partial_fill", "pending_cancel", "a fill races the cancel"),
    ("pending_cancel", "fill", "filled", "filled before the cancel arrived"),
    ("pending_cancel", "cancel", "canceled", "the cancel is confirmed"),
    ("pending_cancel", "expire", "expired", "expired before the cancel arrived"),
    ("pending_cancel", "cancel_reject", "new", "the cancel failed; the order still rests unfilled"),
    ("pending_cancel", "cancel_reject_partial", "partially_filled", "the cancel failed; it rests with fills"),
    ("canceled", "partial_fill", "partially_filled", "a fill made before the cancel, reported after it"),
    ("canceled", "fill", "filled", "a full fill made before the cancel, reported after it"),
    ("expired", "partial_fill", "partially_filled", "a fill made before the expiry, reported after it"),
    ("expired", "fill", "filled", "a full fill made before the expiry, reported after it"),
]


def test_the_table_is_exactly_the_hand_written_list() -> None:
    expected = {(OrderStatus(a), OrderTrigger(t)): OrderStatus(b) for a, t, b, _ in HAND_WRITTEN}

    assert {k: v for k, v in TRANSITIONS.items()} == expected


@pytest.mark.parametrize("status", [OrderStatus.REJECTED, OrderStatus.FILLED, OrderStatus.DENIED])
def test_rejected_filled_and_denied_are_left_by_no_trigger(status: OrderStatus) -> None:
    for trigger in OrderTrigger:
        with pytest.raises(InvalidStateTrigger):
            _order(status).apply(trigger)


# (start status, known filled, venue status, executedQty) -> statuses published, by hand
SYNC_SCENARIOS: list[tuple[str, str, str, str, list[str]]] = [
    ("pending_new", "0", "NEW", "0", ["new"]),
    ("pending_new", "0", "FILLED", "2", ["new", "filled"]),
    ("pending_new", "0", "EXPIRED", "0.5", ["new", "partially_filled", "expired"]),
    ("pending_new", "0", "EXPIRED", "0", ["new", "expired"]),
    ("pending_new", "0", "REJECTED", "0", ["rejected"]),
    ("unknown", "0", "PARTIALLY_FILLED", "1", ["new", "partially_filled"]),
    ("unknown", "0", "CANCELED", "0", ["new", "canceled"]),
    ("new", "0", "NEW", "0", []),
    ("new", "0", "PARTIALLY_FILLED", "1", ["partially_filled"]),
    ("partially_filled", "1", "PARTIALLY_FILLED", "1", []),
    ("partially_filled", "1", "FILLED", "2", ["filled"]),
    ("partially_filled", "1", "CANCELED", "1", ["canceled"]),
    ("pending_cancel", "0", "CANCELED", "0", ["canceled"]),
    ("pending_cancel", "0", "CANCELED", "1", ["pending_cancel", "canceled"]),
    ("pending_cancel", "0", "FILLED", "2", ["filled"]),
    ("pending_cancel", "0", "NEW", "0", ["new"]),  # the cancel failed, nothing filled
    ("pending_cancel", "1", "PARTIALLY_FILLED", "1", ["partially_filled"]),  # the cancel failed
    ("pending_cancel", "0", "PARTIALLY_FILLED", "1", ["pending_cancel", "partially_filled"]),
    ("canceled", "0", "CANCELED", "1", ["partially_filled", "canceled"]),  # late report of a fill
    ("canceled", "0", "CANCELED", "0", []),
    ("expired", "1", "EXPIRED", "1.5", ["partially_filled", "expired"]),
    ("expired", "1", "FILLED", "2", ["filled"]),
    ("rejected", "0", "REJECTED", "0", []),
]


@pytest.mark.parametrize(("start", "filled", "venue", "executed", "published"), SYNC_SCENARIOS)
def test_sync_follows_the_hand_written_scenario(start: str, filled: str, venue: str, executed: str,
                                                published: list[str]) -> None:
    order = _order(OrderStatus(start))
    order.filled_qty = Decimal(filled)

    steps = order.sync(venue, Decimal(executed), Decimal(executed) * 100, "7")

    assert [t.status.value for t in steps] == published
    assert order.filled_qty == max(Decimal(filled), Decimal(executed))


# venue snapshots the table must refuse: the order and its fields stay exactly as they were
REFUSED_SYNCS: list[tuple[str, str, str, str]] = [
    ("rejected", "0", "NEW", "0"),  # a "never placed" order showing up later
    ("rejected", "0", "FILLED", "2"),
    ("filled", "2", "CANCELED", "2"),
    ("denied", "0", "NEW", "0"),
    ("initialized", "0", "NEW", "0"),  # a venue report for an order never sent
]


@pytest.mark.parametrize(("start", "filled", "venue", "executed"), REFUSED_SYNCS)
def test_sync_refused_by_the_table_changes_no_field(start: str, filled: str, venue: str, executed: str) -> None:
    order = _order(OrderStatus(start))
    order.filled_qty = Decimal(filled)

    with pytest.raises(InvalidStateTrigger):
        order.sync(venue, Decimal(executed), Decimal(executed) * 100, "7")

    assert order.status is OrderStatus(start) and order.filled_qty == Decimal(filled)
    assert order.venue_order_id is None and order.seq == 0 and not order.history


@settings(max_examples=300)
@given(st.lists(st.sampled_from(list(OrderTrigger)), max_size=30))
def test_random_trigger_sequences_follow_the_table_exactly(triggers: list[OrderTrigger]) -> None:
    order = _order()
    for trigger in triggers:
        before = order.status
        expected = TRANSITIONS.get((before, trigger))
        if expected is None:
            with pytest.raises(InvalidStateTrigger):
                order.apply(trigger)
            assert order.status is before
        else:
            order.apply(trigger)
            assert order.status is expected
    assert [t.seq for t in order.history] == list(range(len(order.history)))
    for prev, nxt in zip(order.history, order.history[1:], strict=False):
        assert prev.status is nxt.previous


def test_sync_of_an_ioc_partially_filled_then_expired_emits_each_step() -> None:
    order = _order()
    order.apply(OrderTrigger.SUBMIT)

    steps = order.sync("EXPIRED", Decimal("0.5"), Decimal(50), "42")

    assert [t.status for t in steps] == [OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED, OrderStatus.EXPIRED]
    assert order.filled_qty == Decimal("0.5") and order.avg_price == Decimal(100) and order.venue_order_id == "42"


def test_sync_is_idempotent_for_a_repeated_snapshot() -> None:
    order = _order()
    order.apply(OrderTrigger.SUBMIT)
    order.sync("PARTIALLY_FILLED", Decimal(1), Decimal(100), "1")

    assert order.sync("PARTIALLY_FILLED", Decimal(1), Decimal(100), "1") == []
    assert order.status is OrderStatus.PARTIALLY_FILLED


def test_sync_of_a_venue_rejection_on_an_unknown_order_rejects_without_accepting() -> None:
    order = _order(OrderStatus.UNKNOWN)

    steps = order.sync("REJECTED", Decimal(0), Decimal(0), None, reason="bad")

    assert [t.status for t in steps] == [OrderStatus.REJECTED]


def test_sync_full_fill_reaches_filled() -> None:
    order = _order()
    order.apply(OrderTrigger.SUBMIT)

    steps = order.sync("FILLED", Decimal(2), Decimal(201), "9")

    assert steps[-1].status is OrderStatus.FILLED and order.avg_price == Decimal("100.5")
