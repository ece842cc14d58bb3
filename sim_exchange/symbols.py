"""Instrument definitions of the simulated exchange: assets, tick and lot sizes, filter limits.

Prices and quantities live in the engine as integers (ticks and lots); everything that leaves the
exchange is an exact decimal string with 8 decimals, the way Binance spot prints them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

E8 = 10**8
QUOTE_ASSETS = ("USDT", "USDC", "FDUSD", "BTC", "ETH", "BNB")


def e8_str(value_e8: int) -> str:
    """Format an integer count of 1e-8 units as Binance does (8 decimals, exact)."""
    sign = "-" if value_e8 < 0 else ""
    value_e8 = abs(value_e8)
    return f"{sign}{value_e8 // E8}.{value_e8 % E8:08d}"


def dec_str(value: Decimal) -> str:
    """Format a Decimal with 8 decimals, truncating (never rounding up) as Binance does."""
    return e8_str(int((value * E8).to_integral_value(rounding="ROUND_DOWN")))


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """One spot instrument: its assets, grid (tick, step) and filter limits, plus a start price."""

    symbol: str
    base: str
    quote: str
    tick_e8: int
    step_e8: int
    min_qty_lots: int
    max_qty_lots: int
    min_price_ticks: int
    max_price_ticks: int
    min_notional: Decimal
    max_notional: Decimal
    start_price_ticks: int

    @property
    def tick_size(self) -> Decimal:
        return Decimal(self.tick_e8) / E8

    @property
    def step_size(self) -> Decimal:
        return Decimal(self.step_e8) / E8

    def price_str(self, ticks: int) -> str:
        return e8_str(ticks * self.tick_e8)

    def qty_str(self, lots: int) -> str:
        return e8_str(lots * self.step_e8)

    def qty_dec(self, lots: int) -> Decimal:
        return Decimal(lots * self.step_e8) / E8

    def quote_of(self, ticks: int, lots: int) -> Decimal:
        """Exact quote amount of ``lots`` at ``ticks``."""
        return Decimal(ticks * self.tick_e8 * lots * self.step_e8) / (E8 * E8)


# start prices and grids close to Binance spot's own (tick 0.01, realistic steps)
_KNOWN: dict[str, tuple[str, str, str, str]] = {
    # symbol: (tick, step, start price, min notional)
    "BTCUSDT": ("0.01", "0.00001", "60000.00", "5"),
    "ETHUSDT": ("0.01", "0.0001", "3000.00", "5"),
    "BNBUSDT": ("0.01", "0.001", "600.00", "5"),
    "SOLUSDT": ("0.01", "0.001", "150.00", "5"),
    "ETHBTC": ("0.00001", "0.0001", "0.05000", "0.0001"),
}


def split_symbol(symbol: str) -> tuple[str, str]:
    """Split ``BTCUSDT`` into ``("BTC", "USDT")`` by the known quote assets."""
    for quote in QUOTE_ASSETS:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    raise ValueError(f"cannot split symbol {symbol!r} into base and quote (known quotes: {QUOTE_ASSETS})")


def _e8(text: str) -> int:
    return int(Decimal(text) * E8)


def make_spec(symbol: str) -> SymbolSpec:
    """Build the spec of ``symbol``: a known grid for the majors, a generic one otherwise."""
    symbol = symbol.upper()
    base, quote = split_symbol(symbol)
    tick, step, start, min_notional = _KNOWN.get(symbol, ("0.01", "0.001", "100.00", "5"))
    tick_e8, step_e8 = _e8(tick), _e8(step)
    return SymbolSpec(
        symbol=symbol,
        base=base,
        quote=quote,
        tick_e8=tick_e8,
        step_e8=step_e8,
        min_qty_lots=1,
        max_qty_lots=_e8("9000") // step_e8,
        min_price_ticks=1,
        max_price_ticks=_e8("1000000") // tick_e8,
        min_notional=Decimal(min_notional),
        max_notional=Decimal(9000000),
        start_price_ticks=_e8(start) // tick_e8,
    )
