"""At most one run per signal id: the ledger of the first message (partition, offset) of every signal.

A signal id can arrive more than once (a streams worker re-emitting after a crash, a replayed or
duplicated produce).  Only the first message of an id starts a run; the same message read again (a
crash replay of an uncommitted offset, ``tickpipe replay``) is the same run; any other message with
that id is a duplicate and is dropped (counted, logged, its offset committed).  The engine restores
the ledger at start from the ``signals`` topic of the last ``window_ns`` and feeds it every message it
takes.  An entry is forgotten once a copy of its signal would be stale anyway (expired, or older than
``max_signal_age_ms``), so memory stays bounded.  Pure: no clock or Kafka of its own.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class First:
    """Where a signal id was first seen, and when a copy of it is stale anyway (ns)."""

    partition: int
    offset: int
    forget_at: int


class SignalLedger:
    """First occurrence of every recent signal id."""

    def __init__(self, max_age_ns: int) -> None:
        self.max_age_ns = max_age_ns
        self._first: dict[str, First] = {}

    def __len__(self) -> int:
        return len(self._first)

    def claim(self, signal: dict, partition: int, offset: int) -> First | None:
        """Record ``signal`` at ``(partition, offset)``; return its first occurrence if this is a duplicate."""
        sid = signal["signal_id"]
        first = self._first.get(sid)
        if first is not None:
            return None if (first.partition, first.offset) == (partition, offset) else first
        self._first[sid] = First(partition, offset, max(signal["expires_at"], signal["ts_emit"] + self.max_age_ns))
        return None

    def forget_before(self, now: int) -> int:
        """Drop entries whose copies would be stale at ``now``; return how many were dropped."""
        old = [sid for sid, first in self._first.items() if first.forget_at < now]
        for sid in old:
            del self._first[sid]
        return len(old)
