"""The plain decimal strings every record carries for prices and quantities: writing and checking them."""

from __future__ import annotations

import re
from decimal import Decimal

_UNSIGNED_PLAIN = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def decimal_text(value: Decimal) -> str:
    """Render ``value`` without exponent: ``"65000"``, ``"0.00000001"``, ``"0.00010"``.

    ``str(Decimal)`` switches to exponent notation for round or tiny numbers (``str(Decimal("6.5E+4"))``,
    ``str(Decimal("0.00000001")) == "1E-8"``), which the venue's REST API and ClickHouse Decimal
    columns refuse and the records' decimal-string contract rules out.
    """
    return format(value, "f")


def is_plain_unsigned(text: str) -> bool:
    """True for ``"65000"``, ``"0.00010"``, ``"0"``; False for exponents, signs, blanks, ``NaN``.

    A price or quantity of a record is written this way (:func:`decimal_text`); the one order book
    reads a zero quantity (a removed level) from the text alone, so ``"0E-8"`` must not get that far.
    """
    return _UNSIGNED_PLAIN.fullmatch(text) is not None
