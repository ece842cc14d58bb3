"""Decimal -> the plain decimal string every record carries for prices and quantities."""

from __future__ import annotations

from decimal import Decimal


def decimal_text(value: Decimal) -> str:
    """Render ``value`` without exponent: ``"65000"``, ``"0.00000001"``, ``"0.00010"``.

    ``str(Decimal)`` switches to exponent notation for round or tiny numbers (``str(Decimal("6.5E+4"))``,
    ``str(Decimal("0.00000001")) == "1E-8"``), which the venue's REST API and ClickHouse Decimal
    columns refuse and the records' decimal-string contract rules out.
    """
    return format(value, "f")
