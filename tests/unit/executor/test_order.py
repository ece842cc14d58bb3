"""The order state machine: every legal transition, every illegal one raises, random sequences stay legal."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from executor.commands import OrderType, Side, SubmitOrder, TimeInForce
from executor.order import (
    TERMINAL,
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


def test_terminal_states_only_leave_by_the_late_fill_edge() -> None:
    exits = {(s, t) for (s, t) in TRANSITIONS if s in TERMINAL}

    assert exits == {(OrderStatus.CANCELED, OrderTrigger.FILL)}


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
