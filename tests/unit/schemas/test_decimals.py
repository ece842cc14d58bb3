"""schemas.decimals: plain decimal strings, never exponent notation, exact to the last digit."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.decimals import decimal_text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("65000.00").normalize(), "65000"),
        (Decimal("0.00000001"), "0.00000001"),
        (Decimal("0.00010"), "0.00010"),
        (Decimal("-1E+3"), "-1000"),
        (Decimal(0), "0"),
    ],
)
def test_round_and_tiny_values_render_without_exponent(value: Decimal, text: str) -> None:
    assert decimal_text(value) == text


@given(st.decimals(allow_nan=False, allow_infinity=False, places=None))
def test_any_finite_decimal_round_trips_exactly(value: Decimal) -> None:
    text = decimal_text(value)

    assert "E" not in text.upper()
    assert Decimal(text) == value
