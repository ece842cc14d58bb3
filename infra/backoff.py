"""Capped exponential backoff with equal jitter: the one delay rule of every retry loop.

Used by the feed's reconnects and snapshot refusals, the sink's inserts and reads, the executor's
start-up calls and its per-signal settle / fill queries.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

_MAX_DOUBLINGS = 30  # far past any cap; keeps 2**attempt a small number


def backoff_delay(attempt: int, base_s: float, cap_s: float, rand: Callable[[], float] = random.random) -> float:
    """Return the pause before retry ``attempt`` (0-based), in seconds.

    The ceiling doubles from ``base_s`` up to ``cap_s``; half of it is fixed and half random ("equal
    jitter"), so clients that failed together spread out but none retries at once.
    """
    ceiling = min(cap_s, base_s * 2 ** min(attempt, _MAX_DOUBLINGS))
    return ceiling / 2 + rand() * ceiling / 2


@dataclass
class Backoff:
    """A retry loop's backoff: :func:`backoff_delay` with its parameters and the attempt count."""

    base_s: float = 0.2
    cap_s: float = 5.0
    rand: Callable[[], float] = field(default=random.random, repr=False)
    attempt: int = 0

    def delay(self, attempt: int) -> float:
        """Return the pause before retry ``attempt`` (0-based) without counting it."""
        return backoff_delay(attempt, self.base_s, self.cap_s, self.rand)

    def next_delay(self) -> float:
        """Return the pause before the next retry and count it."""
        pause = self.delay(self.attempt)
        self.attempt = min(self.attempt + 1, _MAX_DOUBLINGS)
        return pause

    def reset(self) -> None:
        """Start over from ``base_s`` (the call succeeded)."""
        self.attempt = 0
