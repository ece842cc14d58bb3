"""Deterministic client order ids: the same signal, leg and attempt always give the same id.

Binance accepts ``newClientOrderId`` matching ``^[.A-Z:/a-z0-9_-]{1,36}$``.  The id is
``tp-<20 hex of blake2b(signal_id)>-<leg>-<attempt>`` (at most 36 characters), so a replayed signal
produces exactly the ids it produced before and the venue's duplicate check plus a query by id
recognise an order already sent.
"""

from __future__ import annotations

import hashlib
import re

PREFIX = "tp"
MAX_LEN = 36
MAX_LEG = 99
MAX_ATTEMPT = 9999
VENUE_CHARSET = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
_OURS = re.compile(rf"^{PREFIX}-([0-9a-f]{{20}})-(\d{{1,2}})-(\d{{1,4}})$")


def signal_digest(signal_id: str) -> str:
    """Return the 20-hex-digit digest of a signal id used inside its orders' ids."""
    return hashlib.blake2b(signal_id.encode(), digest_size=10).hexdigest()


def client_order_id(signal_id: str, leg: int, attempt: int) -> str:
    """Return the client order id of ``signal_id``'s ``leg`` at ``attempt`` (both from 0)."""
    if not 0 <= leg <= MAX_LEG:
        raise ValueError(f"leg {leg} outside 0..{MAX_LEG}")
    if not 0 <= attempt <= MAX_ATTEMPT:
        raise ValueError(f"attempt {attempt} outside 0..{MAX_ATTEMPT}")
    return f"{PREFIX}-{signal_digest(signal_id)}-{leg}-{attempt}"


def parse_client_order_id(cid: str) -> tuple[str, int, int] | None:
    """Return ``(signal digest, leg, attempt)`` of one of our ids, or None for anybody else's."""
    match = _OURS.match(cid)
    return (match[1], int(match[2]), int(match[3])) if match else None
