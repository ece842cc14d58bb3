"""Poll a condition until it holds: the one wait loop of the integration tests' harnesses."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T],
    timeout_s: float,
    what: str,
    interval_s: float = 0.2,
    tolerate: tuple[type[Exception], ...] = (),
) -> T:
    """Call ``predicate`` every ``interval_s`` until it returns a truthy value, and return that value.

    An exception of a ``tolerate`` type counts as "not yet" (a service briefly unavailable while
    polling); the last one is named in the failure. Raise ``AssertionError`` naming ``what`` at the timeout.
    """
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except tolerate as exc:
            last_error = exc
        else:
            if value:
                return value
        time.sleep(interval_s)
    suffix = f" (last error: {last_error!r})" if last_error is not None else ""
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}{suffix}")
