"""Start-up reconciliation: before acting, learn from the venue what a previous run left behind.

The protocol (docs/execution.md): read our open orders, cancel them (their signals are uncommitted, so
they are replayed and the replay adopts the canceled orders and continues with the next attempt), read
recent trades per symbol to rebuild positions and PnL, and read balances as the account baseline.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal

from executor.commands import Side
from executor.ids import parse_client_order_id
from executor.positions import Positions
from executor.venue import BinanceVenue, NotFound

log = logging.getLogger(__name__)


@dataclass
class Reconciliation:
    """What start-up reconciliation found and did."""

    canceled: list[str] = field(default_factory=list)
    foreign_open_orders: int = 0
    trades: int = 0
    balances: dict[str, Decimal] = field(default_factory=dict)


def reconcile(venue: BinanceVenue, positions: Positions, symbols: list[str], trades_limit: int) -> Reconciliation:
    """Cancel our open orders, rebuild ``positions`` from recent trades, read balances."""
    report = Reconciliation()
    for order in venue.open_orders():
        cid = order.get("clientOrderId", "")
        if parse_client_order_id(cid) is None:
            report.foreign_open_orders += 1
            continue
        try:
            venue.cancel(order["symbol"], cid)
        except NotFound:
            pass  # filled or canceled in between: the replay's query sees its final state
        report.canceled.append(cid)
    for symbol in symbols:
        for trade in venue.my_trades(symbol, limit=trades_limit):
            side = Side.BUY if trade["isBuyer"] else Side.SELL
            if positions.apply_fill(
                symbol, int(trade["id"]), side, Decimal(trade["price"]), Decimal(trade["qty"]),
                Decimal(trade.get("commission", "0")), trade.get("commissionAsset", ""),
            ):
                report.trades += 1
    report.balances = venue.balances()
    log.info(
        "reconciled with venue",
        extra={"canceled": len(report.canceled), "foreign_open_orders": report.foreign_open_orders,
               "trades": report.trades, "assets": len(report.balances)},
    )
    return report
