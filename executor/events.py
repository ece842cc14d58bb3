"""Record builders: ``OrderEvent`` (one per state transition) and ``Fill`` per the Avro schemas."""

from __future__ import annotations

from typing import Any

from executor.commands import Side
from executor.order import Order, OrderStatus, Transition
from schemas.decimals import decimal_text


def _status(status: OrderStatus) -> str | None:
    # INITIALIZED is local bookkeeping, absent from the schema: it is published as "no previous state".
    return None if status is OrderStatus.INITIALIZED else status.value


def order_event(order: Order, transition: Transition, ts_event: int, ts_recv: int, ts_emit: int) -> dict[str, Any]:
    """Return the ``OrderEvent`` record of ``transition`` of ``order``."""
    cmd = order.command
    avg = order.avg_price
    return {
        "client_order_id": cmd.client_order_id,
        "seq": transition.seq,
        "signal_id": cmd.signal_id,
        "venue": cmd.venue,
        "symbol": cmd.symbol,
        "side": cmd.side.value,
        "order_type": cmd.order_type.value,
        "time_in_force": cmd.time_in_force.value if cmd.time_in_force else None,
        "price": decimal_text(cmd.price),
        "qty": decimal_text(cmd.qty),
        "status": transition.status.value,
        "previous_status": _status(transition.previous),
        "filled_qty": decimal_text(order.filled_qty),
        "avg_price": None if avg is None else decimal_text(avg.normalize()),
        "venue_order_id": order.venue_order_id,
        "reason": transition.reason,
        "error_code": transition.error_code,
        "ts_event": ts_event,
        "ts_recv": ts_recv,
        "ts_emit": ts_emit,
    }


def fill_record(
    order: Order, trade: dict[str, Any], ts_recv: int, ts_emit: int
) -> dict[str, Any]:
    """Return the ``Fill`` record of one Binance ``myTrades`` entry of ``order`` (decimal strings kept as sent)."""
    cmd = order.command
    return {
        "venue": cmd.venue,
        "symbol": cmd.symbol,
        "trade_id": int(trade["id"]),
        "client_order_id": cmd.client_order_id,
        "venue_order_id": str(trade["orderId"]),
        "signal_id": cmd.signal_id,
        "side": (Side.BUY if trade["isBuyer"] else Side.SELL).value,
        "price": str(trade["price"]),
        "qty": str(trade["qty"]),
        "fee": str(trade.get("commission", "0")),
        "fee_asset": str(trade.get("commissionAsset", "")),
        "liquidity": "maker" if trade.get("isMaker") else "taker",
        "ts_event": int(trade["time"]) * 1_000_000,
        "ts_recv": ts_recv,
        "ts_emit": ts_emit,
    }
