"""When archived trades fill a simulated passive order: queue position at its price, risk-averse.

The archive holds the market's trades and visible depth, not its individual orders, so a passive order
of ours joins the back of the visible queue at its price when it reaches the venue, and fills only from
archived trades that reach it after that queue is consumed:

* a trade whose aggressor takes our side (a sell hitting bids for our buy) *at our price* first consumes
  the queue ahead of us; what is left of it fills us;
* a trade *through* our price (a sell below our bid) means the whole level went, us included: it fills
  us up to its own quantity;
* a trade on our side of the book, or short of our price, never fills us;
* the visible quantity at our price shrinking below the queue ahead (cancellations) moves us up to it:
  we assume cancellations come from behind us until the level is smaller than what stands before us.

Our own orders never change the archived market (no impact): a fill does not remove the archived
liquidity it met, and a trade that fills us still prints for everyone else. Pure code; the backtest
venue applies it (``backtest.venue``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from executor.commands import Side

ZERO = Decimal(0)


@dataclass
class QueuePosition:
    """A resting passive order's place in its price level."""

    side: Side
    price: Decimal
    remaining: Decimal
    ahead: Decimal  # visible quantity before us at our price

    def on_trade(self, price: Decimal, qty: Decimal, aggressor: Side) -> Decimal:
        """Apply one archived trade; return the quantity it fills (0 if none) and reduce ``remaining``."""
        if aggressor is self.side or self.remaining <= 0:
            return ZERO
        through = price < self.price if self.side is Side.BUY else price > self.price
        if not through and price != self.price:
            return ZERO
        if through:
            filled = min(self.remaining, qty)
            self.ahead = ZERO
        else:
            passed = qty - self.ahead
            self.ahead = max(ZERO, self.ahead - qty)
            filled = min(self.remaining, passed) if passed > 0 else ZERO
        self.remaining -= filled
        return filled

    def on_depth(self, visible: Decimal) -> None:
        """The visible quantity at our price is now ``visible`` (ours not included)."""
        self.ahead = min(self.ahead, visible)


def queue_ahead(levels: tuple[tuple[Decimal, Decimal], ...], price: Decimal) -> Decimal:
    """The visible quantity at ``price`` among same-side ``levels`` (0: we open or improve the level)."""
    for level_price, qty in levels:
        if level_price == price:
            return qty
    return ZERO
