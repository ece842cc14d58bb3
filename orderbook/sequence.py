"""The update-id rule of a book fed by BookDelta records: a snapshot, then deltas that continue it.

The feed publishes every (re)sync as a snapshot record followed by deltas whose update ids follow
on; the streams and the executor rebuild the book from those records with this one rule:

* a snapshot replaces the book (:class:`Applied`); the executor, which loads the feed's latest
  book (md.book.snapshots, else a REST snapshot) at start and then reads back the feed's older
  ones, refuses a snapshot older than its book (:class:`OutOfOrder`), the streams take every snapshot;
* a delta while no snapshot has been applied since the start or a gap -> :class:`NotSynced`;
* ``last_update_id <= book.last_update_id`` -> :class:`OutOfOrder` (a duplicate or an old update);
* ``first_update_id > book.last_update_id + 1`` -> :class:`Gap` (the book is wrong until the next snapshot);
* otherwise -> :class:`Applied` (the first delta after a snapshot may start before the snapshot's id + 1).

The venue's own chaining rule, which the feed applies to the raw diffs, lives with the venue's
adapter in ``producers/``. Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Applied:
    """The record changed the book."""


@dataclass(frozen=True, slots=True)
class OutOfOrder:
    """The record is older than the book; it was not applied."""

    reason: str


@dataclass(frozen=True, slots=True)
class Gap:
    """Update ids are missing between the book and the delta; the book needs a snapshot."""

    reason: str


@dataclass(frozen=True, slots=True)
class NotSynced:
    """A delta arrived while the book waits for a snapshot; it was ignored."""


Decision = Applied | OutOfOrder | Gap | NotSynced


def decide(
    book_update_id: int, synced: bool, first: int, last: int, snapshot: bool, refuse_older_snapshots: bool = False
) -> Decision:
    """Return what a record with update ids ``first..last`` does to a book at ``book_update_id``.

    After :class:`Applied` the book is synced at ``last``; after :class:`Gap` it is not synced; the
    other decisions leave it as it was.
    """
    if snapshot:
        if refuse_older_snapshots and last < book_update_id:
            return OutOfOrder(f"snapshot at update id {last} older than book update id {book_update_id}")
        return Applied()
    if not synced:
        return NotSynced()
    if last <= book_update_id:
        return OutOfOrder(f"update ids {first}..{last} not after book update id {book_update_id}")
    if first > book_update_id + 1:
        return Gap(f"update ids {book_update_id + 1}..{first - 1} missing")
    return Applied()
