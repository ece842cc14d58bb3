"""Merging N redundant connections' copies of the same venue streams (pure, clock passed in).

Every connection carries the same streams; the merged output must hold each venue event once and
in venue order. Events are identified by venue ids (a trade id, a depth update-id range, a book
ticker update id), so duplicates are dropped by id, never by content or arrival time.

* :class:`SequenceMerger` - for gapless sequences (trade ids, depth update-id ranges). An event
  ahead of the sequence (its predecessor missing) is held for ``hold_ns`` so that a peer
  connection can still deliver the missing events; after that it is released and the consumer
  sees (and reports) the gap.
* :class:`MonotonicFilter` - for sequences with holes by design (book ticker update ids): pass
  only ids above the last one passed.
* :class:`StallDetector` - a connection silent for ``timeout_ns`` while a peer received frames is
  stalled and must be replaced; all connections silent for ``silence_ns`` (far longer) are too.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Hashable
from itertools import count
from typing import Generic, TypeVar

T = TypeVar("T")


class SequenceMerger(Generic[T]):
    """Deduplicate and order one gapless venue sequence arriving over several connections.

    ``span(item) -> (first_id, last_id)`` and ``follows(prev_last_id, item)`` describe the venue's
    ids (trades: ``first == last == t`` and ``t == prev + 1``).
    """

    def __init__(
        self, span: Callable[[T], tuple[int, int]], follows: Callable[[int, T], bool], hold_ns: int
    ) -> None:
        self._span = span
        self._follows = follows
        self._hold_ns = hold_ns
        self.last: int | None = None
        self._held: list[tuple[int, int, int, T]] = []  # (first_id, tiebreak, deadline, item)
        self._tiebreak = count()
        self.duplicates = 0

    @property
    def held(self) -> int:
        """Return how many events wait for a missing predecessor."""
        return len(self._held)

    def offer(self, item: T, now: int) -> list[T]:
        """Take one event from any connection; return the events that are now releasable, in order."""
        first, last = self._span(item)
        if self.last is None or self._follows(self.last, item):
            self.last = last
            out = [item]
            if self._held:
                self._drain(out)
            return out
        if last <= self.last:
            self.duplicates += 1
            return []
        heapq.heappush(self._held, (first, next(self._tiebreak), now + self._hold_ns, item))
        return []

    def expire(self, now: int) -> list[T]:
        """Release held events whose hold ran out (a peer did not fill the hole in time), in order."""
        out: list[T] = []
        held = self._held
        while held and min(h[2] for h in held) <= now:
            _, _, _, item = heapq.heappop(held)
            _, last = self._span(item)
            if self.last is not None and last <= self.last:
                self.duplicates += 1
                continue
            self.last = last
            out.append(item)
            self._drain(out)
        return out

    def reset(self) -> None:
        """Forget the position (e.g. after every connection was lost)."""
        self.last = None
        self._held.clear()

    def _drain(self, out: list[T]) -> None:
        held = self._held
        while held:
            item = held[0][3]
            _, last = self._span(item)
            assert self.last is not None
            if last <= self.last:
                heapq.heappop(held)
                self.duplicates += 1
            elif self._follows(self.last, item):
                heapq.heappop(held)
                self.last = last
                out.append(item)
            else:
                return


class MonotonicFilter:
    """Pass ids strictly above the last passed one; count the rest as duplicates."""

    def __init__(self) -> None:
        self.last = -1
        self.duplicates = 0

    def accept(self, update_id: int) -> bool:
        """Return True when ``update_id`` is new."""
        if update_id > self.last:
            self.last = update_id
            return True
        self.duplicates += 1
        return False


class StallDetector:
    """Find connections that went silent while a peer kept receiving.

    A peer counts as evidence only once it has been receiving for ``timeout_ns`` (frames less than
    ``timeout_ns`` apart) while the connection was silent: when a quiet market wakes up, the first
    frame lands on one connection microseconds before the others, and that alone must not make
    its peers look stalled.
    """

    def __init__(self, timeout_ns: int, silence_ns: int | None = None) -> None:
        self._timeout_ns = timeout_ns
        self._silence_ns = silence_ns
        self._last_frame: dict[Hashable, int] = {}
        self._active_since: dict[Hashable, int] = {}

    def opened(self, conn: Hashable, now: int) -> None:
        """Start watching ``conn`` (silence is counted from its opening)."""
        self._last_frame[conn] = now
        self._active_since[conn] = now

    def closed(self, conn: Hashable) -> None:
        """Stop watching ``conn``."""
        self._last_frame.pop(conn, None)
        self._active_since.pop(conn, None)

    def frame(self, conn: Hashable, now: int) -> None:
        """Record a frame received on ``conn``."""
        if now - self._last_frame.get(conn, now) >= self._timeout_ns:
            self._active_since[conn] = now  # receiving again after a quiet spell
        self._last_frame[conn] = now

    def stalled(self, now: int) -> list[Hashable]:
        """Return the connections silent for ``timeout_ns`` while a peer kept receiving for that long."""
        if not self._last_frame:
            return []
        timeout = self._timeout_ns
        newest = max(self._last_frame.values())
        if now - newest >= timeout:
            # everyone is silent: a quiet market, unless it lasts longer than any market is quiet
            if self._silence_ns is not None and now - newest >= self._silence_ns:
                return list(self._last_frame)
            return []
        receiving = [p for p, t in self._last_frame.items() if now - t < timeout]
        return [
            c for c, t in self._last_frame.items()
            if now - t >= timeout and any(now - max(self._active_since[p], t) >= timeout for p in receiving)
        ]
