"""DeadLetter records for venue input the feed could not use (malformed, unknown, invalid numbers)."""

from __future__ import annotations

from typing import Any

STAGE = "feed"


def dead_letter(venue: str, source: str, raw: str | bytes, error: str, ts_recv: int, symbol: str = "") -> dict[str, Any]:
    """Return a DeadLetter record; ``source`` is the websocket or REST URL the input came from."""
    return {
        "venue": venue,
        "symbol": symbol,
        "stage": STAGE,
        "source_topic": source,
        "partition": -1,
        "offset": -1,
        "raw": raw.encode() if isinstance(raw, str) else bytes(raw),
        "error": error,
        "ts_event": ts_recv,
        "ts_recv": ts_recv,
    }
