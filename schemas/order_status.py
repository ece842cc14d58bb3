"""The states of an order as the ``orders`` topic carries them (``OrderEvent.status``).

Part of the record contract, not of the executor: anything reading ``orders`` (the archive's views,
``tickpipe top``) asks the same question (is this order still open?) with the same sets.
"""

from __future__ import annotations

from enum import StrEnum


class OrderStatus(StrEnum):
    """Order states; the values are the ``OrderStatus`` symbols of ``OrderEvent.avsc``."""

    INITIALIZED = "initialized"  # local only: built, not yet checked by risk nor sent
    PENDING_NEW = "pending_new"
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    PENDING_CANCEL = "pending_cancel"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    DENIED = "denied"
    UNKNOWN = "unknown"


S = OrderStatus

TERMINAL: frozenset[OrderStatus] = frozenset({S.FILLED, S.CANCELED, S.REJECTED, S.EXPIRED, S.DENIED})
"""States no trigger leaves except a late fill report (CANCELED / EXPIRED -> PARTIALLY_FILLED / FILLED)."""

OPEN: frozenset[OrderStatus] = frozenset({S.NEW, S.PARTIALLY_FILLED, S.PENDING_CANCEL})
"""States in which the order rests on the venue."""

UNSETTLED: frozenset[OrderStatus] = frozenset({S.PENDING_NEW, S.UNKNOWN})
"""States in which only a query by client order id can tell what the venue did."""
