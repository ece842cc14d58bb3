"""Commands the execution policy issues and the engine carries out against the venue."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum


class Side(StrEnum):
    """Order side; values match the Avro ``Side`` enum."""

    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        """+1 for buy, -1 for sell."""
        return 1 if self is Side.BUY else -1


class OrderType(StrEnum):
    """Order types the executor sends (Binance spot names)."""

    LIMIT_MAKER = "LIMIT_MAKER"  # post-only: the venue rejects it if it would take
    LIMIT = "LIMIT"


class TimeInForce(StrEnum):
    """Time in force of LIMIT orders (LIMIT_MAKER has none)."""

    GTC = "GTC"
    IOC = "IOC"


@dataclass(frozen=True)
class SubmitOrder:
    """Place one order. ``client_order_id`` is deterministic (``executor.ids``), so a resend is recognisable."""

    client_order_id: str
    signal_id: str
    venue: str
    symbol: str
    side: Side
    order_type: OrderType
    time_in_force: TimeInForce | None
    price: Decimal
    qty: Decimal
    leg: int
    attempt: int

    @property
    def notional(self) -> Decimal:
        """Price times quantity in quote units."""
        return self.price * self.qty
