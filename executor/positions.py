"""Positions and PnL per instrument from fills, in exact Decimal (average-cost method).

A spot position is the net base quantity bought minus sold since the executor's account baseline,
net of fees charged in the base asset (Binance takes a buy's fee from the base received): such a fee
leaves the position like a sale at price 0, so it is realized as a loss at the average price.
Realized PnL accrues when a fill reduces the position; unrealized PnL marks the rest to a price.
Fees are kept per asset, and every new fill's effect on each asset's balance is summed in
``Positions.asset_delta``, so balances can be compared exactly with the venue's (reconciliation).
A fill whose trade happened before the start balances were read (``baseline_ms``, venue time: a
trade of a previous process published only now, by a replay) moves the position but not
``asset_delta``: those balances already hold it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from executor.commands import Side

ZERO = Decimal(0)


@dataclass
class Position:
    """One instrument's net position, average entry price and PnL in quote units."""

    symbol: str
    base_asset: str = ""
    qty: Decimal = ZERO
    avg_price: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    fees: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))

    def apply_fill(self, side: Side, price: Decimal, qty: Decimal, fee: Decimal = ZERO, fee_asset: str = "") -> None:
        """Update quantity, average price and realized PnL with one fill (net of a fee in the base asset)."""
        self._trade(side, price, qty)
        if fee:
            self.fees[fee_asset] += fee
            if fee_asset and fee_asset == self.base_asset:
                self._trade(Side.SELL, ZERO, fee)

    def _trade(self, side: Side, price: Decimal, qty: Decimal) -> None:
        signed = qty * side.sign
        if self.qty == 0 or (self.qty > 0) == (signed > 0):
            total = self.qty + signed
            self.avg_price = (self.avg_price * abs(self.qty) + price * qty) / abs(total)
            self.qty = total
        else:
            closed = min(abs(signed), abs(self.qty))
            direction = 1 if self.qty > 0 else -1
            self.realized_pnl += (price - self.avg_price) * closed * direction
            self.qty += signed
            if self.qty == 0:
                self.avg_price = ZERO
            elif (self.qty > 0) != (direction > 0):
                self.avg_price = price  # flipped through zero: the rest opened at this price

    def unrealized_pnl(self, mark: Decimal) -> Decimal:
        """PnL of the open quantity marked at ``mark``."""
        return (mark - self.avg_price) * self.qty


class Positions:
    """All positions of the account, keyed by symbol; fills are deduplicated by venue trade id."""

    def __init__(self, assets: dict[str, tuple[str, str]] | None = None) -> None:
        self.assets = assets or {}  # symbol -> (base asset, quote asset), from exchangeInfo
        self._by_symbol: dict[str, Position] = {}
        self._seen: set[tuple[str, int]] = set()
        self.asset_delta: dict[str, Decimal] = defaultdict(Decimal)  # balance change of new fills, per asset
        self.baseline_ms: int | None = None  # venue time of the start balances; None: every fill is new to them

    def apply_fill(
        self, symbol: str, trade_id: int, side: Side, price: Decimal, qty: Decimal, fee: Decimal, fee_asset: str,
        trade_ms: int | None = None,
    ) -> bool:
        """Apply a fill once; return False if this trade id was already applied.

        ``trade_ms`` (the venue's trade time) at or before ``baseline_ms`` leaves ``asset_delta`` alone.
        """
        if (symbol, trade_id) in self._seen:
            return False
        self._seen.add((symbol, trade_id))
        self.get(symbol).apply_fill(side, price, qty, fee, fee_asset)
        if self.baseline_ms is not None and trade_ms is not None and trade_ms <= self.baseline_ms:
            return True
        base, quote = self.assets.get(symbol, ("", ""))
        if base and quote:
            self.asset_delta[base] += qty * side.sign
            self.asset_delta[quote] -= qty * price * side.sign
        if fee:
            self.asset_delta[fee_asset] -= fee
        return True

    def get(self, symbol: str) -> Position:
        """Return the position of ``symbol`` (flat if never traded)."""
        if symbol not in self._by_symbol:
            self._by_symbol[symbol] = Position(symbol, self.assets.get(symbol, ("", ""))[0])
        return self._by_symbol[symbol]

    def symbols(self) -> list[str]:
        """Symbols with a position record."""
        return sorted(self._by_symbol)
