"""executor.events: OrderEvent prices and quantities are plain decimal strings, whatever their magnitude."""

from __future__ import annotations

from decimal import Decimal

from executor.commands import OrderType, Side, SubmitOrder, TimeInForce
from executor.events import order_event
from executor.order import Order, OrderTrigger


def test_round_fill_price_and_tiny_quantity_are_published_without_exponent() -> None:
    # Arrange: str(Decimal) would give "6.5E+4" for the average and "1E-8" for the quantity
    cmd = SubmitOrder("tp-00-0-0", "sig", "binance", "BTCUSDT", Side.BUY, OrderType.LIMIT, TimeInForce.IOC,
                      Decimal(65000), Decimal("0.00000001"), 0, 0)
    order = Order(cmd)
    order.apply(OrderTrigger.SUBMIT)

    # Act
    transition = order.sync("FILLED", Decimal("0.00000001"), Decimal("0.00065"), "42")[-1]
    record = order_event(order, transition, 1, 2, 3)

    # Assert
    assert (record["price"], record["qty"], record["filled_qty"], record["avg_price"]) == (
        "65000", "0.00000001", "0.00000001", "65000"
    )
