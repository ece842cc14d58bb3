"""Binance error codes mapped to retriable / not retriable (the ``retriable`` flag of producers.errors)."""

from __future__ import annotations

import orjson

from producers.errors import FeedError

RETRIABLE_HTTP_STATUS = {408, 418, 429, 500, 502, 503, 504}
"""429: request weight exceeded; 418: IP auto-banned after ignoring 429s (wait Retry-After); 5xx: venue side."""

FATAL_CODES = {
    -1100: "illegal characters in parameter",
    -1121: "invalid symbol",
}
"""REST ``{"code": ..., "msg": ...}`` codes that no retry can fix."""


class BinanceHttpError(FeedError):
    """A REST call answered with an error status or error body."""

    def __init__(self, status: int, code: int | None, message: str) -> None:
        super().__init__(f"binance http {status} code {code}: {message}")
        self.status = status
        self.code = code
        self.retriable = code not in FATAL_CODES and (status in RETRIABLE_HTTP_STATUS or status >= 500)


def http_error(status: int, body: bytes) -> BinanceHttpError:
    """Return the error a non-200 REST answer stands for (body ``{"code": -1121, "msg": "Invalid symbol."}``)."""
    try:
        obj = orjson.loads(body)
        code, msg = (obj.get("code"), str(obj.get("msg", ""))) if isinstance(obj, dict) else (None, "")
    except orjson.JSONDecodeError:
        code, msg = None, body[:200].decode("utf-8", "replace")
    return BinanceHttpError(status, code if isinstance(code, int) else None, msg)
