"""Capped exponential backoff with equal jitter: the one delay rule of every retry loop (feed reconnects, sink inserts)."""

from __future__ import annotations

import random
from collections.abc import Callable

_MAX_DOUBLINGS = 30  # far past any cap; keeps 2**attempt a small number


def backoff_delay(attempt: int, base_s: float, cap_s: float, rand: Callable[[], float] = random.random) -> float:
    """Return the pause before retry ``attempt`` (0-based), in seconds.

    The ceiling doubles from ``base_s`` up to ``cap_s``; half of it is fixed and half random ("equal
    jitter"), so clients that failed together spread out but none retries at once.
    """
    ceiling = min(cap_s, base_s * 2 ** min(attempt, _MAX_DOUBLINGS))
    return ceiling / 2 + rand() * ceiling / 2
