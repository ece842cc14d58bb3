"""Exact decimal arithmetic shared by the bar and flow math."""

from __future__ import annotations

from decimal import Context, Decimal

# Sums of price*qty over a minute of a busy market need more than the default 28 digits.
EXACT = Context(prec=60)


def to_str(value: Decimal) -> str:
    """Render without exponent (``"0.00010"``, never ``"1.0E-4"``) so ClickHouse Decimal columns accept it."""
    return format(value, "f")
