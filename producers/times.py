"""Venue time formats -> ns since the epoch (pure; shared by the venue parsers)."""

from __future__ import annotations

import calendar
import re
from typing import Any

from producers.errors import ParseError

_RFC3339 = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?Z").fullmatch


def rfc3339_ns(value: Any, field: str = "timestamp") -> int:
    """Return an RFC 3339 UTC time (``2023-10-06T17:35:55.440295Z``, up to ns digits) as ns since the epoch."""
    m = _RFC3339(value) if type(value) is str else None
    if m is None:
        raise ParseError(f"invalid time in {field}: {value!r}")
    y, mo, d, h, mi, s, frac = m.groups()
    if not (1 <= int(mo) <= 12 and 1 <= int(d) <= 31 and int(h) < 24 and int(mi) < 60 and int(s) < 61):
        raise ParseError(f"invalid time in {field}: {value!r}")
    seconds = calendar.timegm((int(y), int(mo), int(d), int(h), int(mi), int(s), 0, 0, 0))
    return seconds * 1_000_000_000 + int((frac or "0").ljust(9, "0"))
