"""Signed-endpoint checks of Binance spot: HMAC-SHA256 signature, ``timestamp`` and ``recvWindow``.

Binance signs ``totalParams``, the query string concatenated with the request body, without the
``signature`` parameter itself; the signature is the lower- or upper-case hex HMAC-SHA256 of it
keyed with the API secret.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from sim_exchange import errors

MAX_RECV_WINDOW_MS = 60_000
DEFAULT_RECV_WINDOW_MS = 5_000
MAX_AHEAD_MS = 1_000


def sign(secret: str, payload: str) -> str:
    """Return the hex HMAC-SHA256 of ``payload`` keyed with ``secret`` (what clients send)."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def split_signature(total_params: str) -> tuple[str, str | None]:
    """Split ``a=1&b=2&signature=ff`` into the signed payload and the signature."""
    kept, signature = [], None
    for part in total_params.split("&"):
        if part.startswith("signature="):
            signature = part[len("signature=") :]
        elif part:
            kept.append(part)
    return "&".join(kept), signature


def verify_signature(secret: str, total_params: str) -> None:
    """Raise ``-1022`` unless ``total_params`` carries a valid signature made with ``secret``."""
    payload, signature = split_signature(total_params)
    if not signature or not hmac.compare_digest(sign(secret, payload), signature.lower()):
        raise errors.bad_signature()


def check_timestamp(params: Mapping[str, str], now_ms: int) -> None:
    """Raise ``-1102``/``-1131``/``-1021`` as Binance does for a missing, stale or future timestamp."""
    text = params.get("timestamp")
    if not text:
        raise errors.mandatory_missing("timestamp")
    if not text.isdigit():
        raise errors.illegal_chars("timestamp")
    window_text = params.get("recvWindow") or str(DEFAULT_RECV_WINDOW_MS)
    try:
        window = int(window_text)
    except ValueError:
        raise errors.illegal_chars("recvWindow") from None
    if not 0 < window <= MAX_RECV_WINDOW_MS:
        raise errors.invalid_recv_window()
    timestamp = int(text)
    if timestamp > now_ms + MAX_AHEAD_MS:
        raise errors.timestamp_ahead()
    if now_ms - timestamp > window:
        raise errors.timestamp_outside()
