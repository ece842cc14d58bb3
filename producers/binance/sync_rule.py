"""Binance spot's depth sync rule ("How to manage a local order book correctly").

After dropping buffered diffs with ``u <= lastUpdateId``, the first applied diff must satisfy
``U <= lastUpdateId + 1 <= u``; every later diff must have ``U == previous u + 1``.
(Futures differ: they chain on ``pu == previous u``; such a venue brings its own rule.)
"""

from __future__ import annotations

from producers.venue import Diff


class BinanceSpotSyncRule:
    """Implements :class:`producers.venue.SyncRule` for Binance spot."""

    def straddles(self, snapshot_id: int, diff: Diff) -> bool:
        """Return True when ``U <= lastUpdateId + 1 <= u``."""
        return diff.first_id <= snapshot_id + 1 <= diff.last_id

    def follows(self, prev_last_id: int, diff: Diff) -> bool:
        """Return True when ``U == previous u + 1``."""
        return diff.first_id == prev_last_id + 1
