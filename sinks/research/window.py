"""Parse ``--since`` durations such as ``90s``, ``15m``, ``1h``, ``2d``."""

from __future__ import annotations

import re

_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def parse_duration_s(text: str) -> int:
    """Return the seconds in ``text`` (``<int><s|m|h|d>``); raise ValueError otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhd])\s*", text)
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"duration {text!r}: expected a positive number and a unit s, m, h or d (e.g. 1h)")
    return int(match.group(1)) * _UNITS_S[match.group(2)]
