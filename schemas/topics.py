"""The topic catalogue: every topic, the record it carries, and the key convention."""

from __future__ import annotations

from enum import StrEnum


class Topic(StrEnum):
    """Kafka topics, one per data type (table in docs/architecture.md ## topics)."""

    TRADES = "md.trades"
    BOOK = "md.book"
    BBO = "md.bbo"
    HEALTH = "md.health"
    INSTRUMENTS = "md.instruments"
    FEATURES_BOOK = "features.book"
    FEATURES_FLOW = "features.flow"
    FEATURES_CROSS = "features.cross"
    BARS_1S = "bars.1s"
    BARS_1M = "bars.1m"
    SIGNALS = "signals"
    ORDERS = "orders"
    FILLS = "fills"
    EXECUTOR_HEALTH = "executor.health"
    DLQ = "dlq"


RECORD_OF_TOPIC: dict[Topic, str] = {
    Topic.TRADES: "Trade",
    Topic.BOOK: "BookDelta",
    Topic.BBO: "BBO",
    Topic.HEALTH: "FeedEvent",
    Topic.INSTRUMENTS: "Instrument",
    Topic.FEATURES_BOOK: "BookFeatures",
    Topic.FEATURES_FLOW: "FlowFeatures",
    Topic.FEATURES_CROSS: "CrossVenueBBO",
    Topic.BARS_1S: "Bar",
    Topic.BARS_1M: "Bar",
    Topic.SIGNALS: "Signal",
    Topic.ORDERS: "OrderEvent",
    Topic.FILLS: "Fill",
    Topic.EXECUTOR_HEALTH: "ExecutorEvent",
    Topic.DLQ: "DeadLetter",
}


BOOK_SNAPSHOTS = "md.book.snapshots"
"""Compacted topic (key ``venue:SYMBOL``): the feed's latest whole book per instrument, a BookDelta with
``snapshot`` true, so a consumer that joins mid-stream starts from it instead of waiting for a resync.
Not in :class:`Topic`: it is state, not a record stream, and is not archived (``md.book`` holds the same
history). Written after every resync and every ``feed.book_snapshot_interval_s``."""


def instrument_key(venue: str, symbol: str) -> bytes:
    """Return the message key ``"{venue}:{symbol}"`` that keeps one instrument ordered in its partition."""
    return f"{venue}:{symbol}".encode()
