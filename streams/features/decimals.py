"""Exact decimal arithmetic shared by the bar and flow math."""

from __future__ import annotations

from decimal import Context

# Sums of price*qty over a minute of a busy market need more than the default 28 digits.
EXACT = Context(prec=60)
