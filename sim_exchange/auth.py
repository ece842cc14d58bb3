"""Signed-request checks of Binance spot: HMAC-SHA256 or Ed25519 signature, ``timestamp`` and ``recvWindow``.

REST signs ``totalParams``, the query string concatenated with the request body, without the
``signature`` parameter itself; the WebSocket API signs its ``params`` sorted by name as
``name=value&...`` (:func:`ws_payload`). An HMAC key's signature is the lower- or upper-case hex
HMAC-SHA256 of the payload keyed with the API secret; an Ed25519 key's is the base64 Ed25519
signature of it, checked against the public key registered for the API key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

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


def sign_ed25519(private_key: Ed25519PrivateKey, payload: str) -> str:
    """Return the base64 Ed25519 signature of ``payload`` (what an Ed25519-key client sends)."""
    return base64.b64encode(private_key.sign(payload.encode())).decode()


def verify(secret: str, ed25519_key: bytes | None, payload: str, signature: str | None) -> None:
    """Raise ``-1022`` unless ``signature`` signs ``payload`` with the account's key (Ed25519 if it has one)."""
    if not signature:
        raise errors.bad_signature()
    if ed25519_key is None:
        if not hmac.compare_digest(sign(secret, payload), signature.lower()):
            raise errors.bad_signature()
        return
    try:
        Ed25519PublicKey.from_public_bytes(ed25519_key).verify(base64.b64decode(signature, validate=True),
                                                                payload.encode())
    except (InvalidSignature, binascii.Error, ValueError):
        raise errors.bad_signature() from None


def verify_signature(secret: str, total_params: str, ed25519_key: bytes | None = None) -> None:
    """Raise ``-1022`` unless REST ``total_params`` carries a valid signature (URL-encoded for Ed25519)."""
    payload, signature = split_signature(total_params)
    verify(secret, ed25519_key, payload, unquote(signature) if signature else None)


def ws_value(value: Any) -> str:
    """A WebSocket API parameter as it is signed and read: JSON booleans as ``true``/``false``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def ws_payload(params: Mapping[str, Any]) -> str:
    """The WebSocket API signature payload: every parameter but ``signature``, sorted by name."""
    return "&".join(f"{k}={ws_value(v)}" for k, v in sorted(params.items()) if k != "signature")


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
