"""Record builders per the Avro schemas: ``OrderEvent`` (one per state transition), ``Fill``, ``ExecutorEvent``."""

from __future__ import annotations

from typing import Any

from executor.commands import Side
from executor.order import Order, OrderStatus, Transition
from executor.reconcile import BalanceCheck
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
        "ts_signal_ack": order.signal_ack_ns,
        "ts_in": order.taken_ns,
        "ts_sent": order.sent_ns,
        "backtest_id": "",  # the live executor; a backtest stamps its own id on the record it writes
    }


def fill_record(
    order: Order, trade: dict[str, Any], account: str, ts_recv: int, ts_emit: int
) -> dict[str, Any]:
    """Return the ``Fill`` record of one Binance ``myTrades`` entry of ``order`` by ``account`` (decimals as sent)."""
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
        "account": account,
        "ts_event": int(trade["time"]) * 1_000_000,
        "ts_recv": ts_recv,
        "ts_emit": ts_emit,
        "backtest_id": "",
    }


class ExecutorEvents:
    """Builds the ``ExecutorEvent`` records of one executor process; ``event_id`` = account, process start, sequence."""

    def __init__(self, venue: str, account: str, started_ns: int) -> None:
        self.venue, self.account, self.started_ns = venue, account, started_ns
        self._seq = 0

    def _record(self, kind: str, detail: str, state: str, reason: str, ts_event: int, ts_recv: int, ts_emit: int,
                **fields: Any) -> dict[str, Any]:
        event_id = f"{self.account}:{self.started_ns}:{self._seq}"
        self._seq += 1
        return {"event_id": event_id, "venue": self.venue, "symbol": "", "account": self.account, "kind": kind,
                "detail": detail, "balance_diffs": [], "value_quote": None, "open_orders": [], "trading_state": state,
                "state_reason": reason, "ts_event": ts_event, "ts_recv": ts_recv, "ts_emit": ts_emit, **fields}

    def reconciliation(
        self, check: BalanceCheck, open_orders: list[tuple[str, str, bool]], state: str, reason: str,
        ts_recv: int, ts_emit: int,
    ) -> dict[str, Any]:
        """``reconciliation_diff`` (balances or ``open_orders`` (symbol, client id, ours) differ), else ``_clear``."""
        differs = bool(check.diff or open_orders)
        parts = [f"{asset} {qty:+f}" for asset, qty in check.diff.items()]
        detail = (f"venue balances differ from fills: {', '.join(parts) or 'none'} (worth {check.value} quote"
                  f"{', unpriced: ' + ', '.join(check.unpriced) if check.unpriced else ''}); "
                  f"{sum(1 for *_, ours in open_orders if not ours)} foreign and "
                  f"{sum(1 for *_, ours in open_orders if ours)} unmanaged open orders"
                  if differs else "the venue's account agrees with the executor's view again")
        return self._record(
            "reconciliation_diff" if differs else "reconciliation_clear", detail, state, reason, ts_recv, ts_recv,
            ts_emit,
            balance_diffs=[{"asset": a, "qty": decimal_text(q), "priced": a not in check.unpriced}
                           for a, q in check.diff.items()],
            value_quote=decimal_text(check.value),
            open_orders=[{"symbol": sym, "client_order_id": cid, "ours": ours} for sym, cid, ours in open_orders],
        )

    def risk_state(self, previous: str, state: str, reason: str, ts_event: int, ts_recv: int, ts_emit: int) -> dict[str, Any]:
        """``risk_state``: the trading state changed from ``previous`` to ``state`` because of ``reason``."""
        return self._record("risk_state", f"trading state {previous} -> {state}", state, reason, ts_event, ts_recv,
                            ts_emit)
