"""Reconciliation with the venue: at start-up, and balances against fills every few seconds.

Start-up (docs/execution.md): read our open orders, cancel them (their signals are uncommitted, so
they are replayed and the replay adopts the canceled orders and continues with the next attempt), read
recent trades per symbol to rebuild positions and PnL, and read balances as the account baseline.

Periodic (:func:`balance_check`, pure): the venue's balances should equal the baseline plus what the
fills applied since (``Positions.asset_delta``); whatever differs (a trade placed behind the
executor's back, a lost fill) is the difference, valued in quote units at mid.
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


@dataclass(frozen=True)
class BalanceCheck:
    """Venue balance minus expected balance per asset (non-zero only), and its worth in quote units."""

    diff: dict[str, Decimal]
    value: Decimal
    unpriced: tuple[str, ...] = ()


def balance_check(
    baseline: dict[str, Decimal], delta: dict[str, Decimal], venue: dict[str, Decimal], prices: dict[str, Decimal]
) -> BalanceCheck:
    """Compare the venue's balances with ``baseline + delta``; value the difference with ``prices`` (quote = 1)."""
    zero = Decimal(0)
    diff = {}
    for asset in sorted(set(baseline) | set(delta) | set(venue)):
        d = venue.get(asset, zero) - baseline.get(asset, zero) - delta.get(asset, zero)
        if d:
            diff[asset] = d
    value = sum((abs(d) * prices[a] for a, d in diff.items() if a in prices), zero)
    return BalanceCheck(diff, value, tuple(a for a in diff if a not in prices))
