"""The venue-neutral order-book sync state machine (pure: no I/O, no clock).

It follows the snapshot-then-diffs procedure venues document (Binance: "How to manage a local
order book correctly"), with the venue's chaining rule injected as a :class:`SyncRule`:

1. diffs are buffered while no valid snapshot is applied (nothing is lost during the REST fetch);
2. on a snapshot, buffered diffs at or below its id are dropped; the first remaining one must
   straddle it (else the snapshot is older than the buffer: :class:`Stale`, fetch again);
3. later diffs must follow the previous one; a break is a :class:`Gap`, a crossed book a
   :class:`Crossed`: both return to step 1 keeping the diffs received from then on.

Every call returns an explicit result; callers publish and fetch snapshots accordingly.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum

from orderbook import OrderBook
from producers.venue import Diff, Snapshot, SyncRule


class SyncState(Enum):
    """Whether the book is true (LIVE) or waiting for a snapshot (SYNCING)."""

    SYNCING = "syncing"
    LIVE = "live"


@dataclass(frozen=True, slots=True)
class Applied:
    """The diff was applied; publish it as a BookDelta."""

    diff: Diff


@dataclass(frozen=True, slots=True)
class Buffered:
    """The diff waits for a snapshot; ``depth`` diffs are buffered now."""

    depth: int


@dataclass(frozen=True, slots=True)
class Duplicate:
    """The diff is at or below the book's update id (already applied or superseded)."""

    diff: Diff


@dataclass(frozen=True, slots=True)
class Gap:
    """Update ids ``expected..got_first-1`` are missing; the book is stale until a new snapshot."""

    expected: int
    got_first: int


@dataclass(frozen=True, slots=True)
class Crossed:
    """The book crossed (best bid >= best ask) after ``last_update_id``; it is stale until a new snapshot."""

    last_update_id: int


@dataclass(frozen=True, slots=True)
class Stale:
    """The snapshot is older than the first buffered diff; fetch another one."""

    snapshot_id: int
    buffered_first: int


@dataclass(frozen=True, slots=True)
class Synced:
    """The snapshot was applied, then the buffered diffs in ``applied``; publish it as a snapshot delta."""

    snapshot: Snapshot
    applied: list[Diff]


@dataclass(frozen=True, slots=True)
class Ignored:
    """A snapshot arrived while none was wanted."""


SyncResult = Applied | Buffered | Duplicate | Gap | Crossed | Stale | Synced | Ignored


class BookSync:
    """Keeps one instrument's :class:`orderbook.OrderBook` (the shared level store) true, or says why it is not."""

    def __init__(self, rule: SyncRule, max_buffer: int = 100_000) -> None:
        self.book = OrderBook()
        self.state = SyncState.SYNCING
        self._rule = rule
        self._buffer: deque[Diff] = deque(maxlen=max_buffer)
        self._await_straddle = False

    @property
    def buffered(self) -> int:
        """Return how many diffs wait for a snapshot."""
        return len(self._buffer)

    def apply_diff(self, diff: Diff) -> SyncResult:
        """Feed one diff (in venue order, deduplicated across connections)."""
        if self.state is SyncState.SYNCING:
            self._buffer.append(diff)
            return Buffered(len(self._buffer))
        book = self.book
        last = book.last_update_id
        if diff.last_id <= last:
            return Duplicate(diff)
        ok = self._rule.straddles(last, diff) if self._await_straddle else self._rule.follows(last, diff)
        if not ok:
            self._restart(diff)
            return Gap(last + 1, diff.first_id)
        self._await_straddle = False
        book.apply(diff.bids, diff.asks, diff.last_id)
        if book.is_crossed():
            self._restart(None)
            return Crossed(diff.last_id)
        return Applied(diff)

    def apply_snapshot(self, snapshot: Snapshot) -> SyncResult:
        """Apply a REST snapshot and the buffered diffs after it."""
        if self.state is SyncState.LIVE:
            return Ignored()
        buffer = self._buffer
        sid = snapshot.last_update_id
        while buffer and buffer[0].last_id <= sid:
            buffer.popleft()
        if buffer and not self._rule.straddles(sid, buffer[0]):
            return Stale(sid, buffer[0].first_id)
        book = self.book
        book.reset(snapshot.bids, snapshot.asks, sid)
        if book.is_crossed():
            return Stale(sid, buffer[0].first_id if buffer else sid + 1)
        self.state = SyncState.LIVE
        self._await_straddle = True
        pending = list(buffer)
        buffer.clear()
        applied: list[Diff] = []
        for i, diff in enumerate(pending):
            result = self.apply_diff(diff)
            if type(result) is Applied:
                applied.append(diff)
            elif type(result) is not Duplicate:
                # the buffer itself had a hole or crossed the book: sync again, keeping later diffs
                self._buffer.extend(pending[i + 1:])
                return result
        return Synced(snapshot, applied)

    def _restart(self, diff: Diff | None) -> None:
        self.state = SyncState.SYNCING
        self._buffer.clear()
        if diff is not None:
            self._buffer.append(diff)
