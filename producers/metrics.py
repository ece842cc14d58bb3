"""Prometheus metrics of the feed, per connection and per symbol.

The ``connection`` label is the redundant slot (``c0``, ``c1``...), not each reconnection
(``c0#7``), so label cardinality stays fixed. Label children are cached: ``.labels()`` costs about
a microsecond, too much per frame.
"""


from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

def slot_of(connection_id: str) -> str:
    """Return the slot of a connection id (``c0#7`` -> ``c0``)."""
    return connection_id.partition("#")[0]


_LAG_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class FeedMetrics:
    """Every feed metric; one instance per registry (tests and benchmarks pass a fresh registry)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.frames = Counter(
            "tickpipe_feed_frames_total", "websocket frames received (rate() = frames/s)",
            ["connection", "symbol"], registry=registry,
        )
        self.lag = Histogram(
            "tickpipe_feed_venue_lag_seconds", "local receive time minus venue event time",
            ["symbol"], buckets=_LAG_BUCKETS, registry=registry,
        )
        self.resyncs = Counter("tickpipe_feed_resyncs_total", "book resyncs started", ["symbol"], registry=registry)
        self.gaps = Counter("tickpipe_feed_gaps_total", "sequence gaps detected", ["symbol", "stream"], registry=registry)
        self.duplicates = Counter(
            "tickpipe_feed_duplicates_dropped_total", "redundant copies dropped by venue id",
            ["symbol", "stream"], registry=registry,
        )
        self.book_buffer = Gauge(
            "tickpipe_feed_book_buffer_depth", "depth diffs buffered while waiting for a snapshot",
            ["symbol"], registry=registry,
        )
        self.dead_letters = Counter(
            "tickpipe_feed_dead_letters_total", "inputs sent to dlq", ["reason"], registry=registry,
        )
        self.connects = Counter("tickpipe_feed_connects_total", "websocket (re)connections", ["connection"], registry=registry)
        self.kafka_buffer = Gauge(
            "tickpipe_feed_kafka_buffer_records", "records waiting in the producer's RAM buffer", registry=registry,
        )
        self.kafka_failed = Counter("tickpipe_feed_kafka_delivery_failures_total", "records Kafka failed to take", registry=registry)
        self.kafka_dropped = Counter("tickpipe_feed_kafka_dropped_total", "records dropped past the buffer bound", registry=registry)
        self._frames: dict[tuple[str, str], Counter] = {}
        self._lag: dict[str, Histogram] = {}

    def frame(self, connection: str, symbol: str, lag_s: float | None) -> None:
        """Count one frame and observe its venue-to-receive lag."""
        key = (connection, symbol)
        child = self._frames.get(key)
        if child is None:
            child = self._frames[key] = self.frames.labels(slot_of(connection), symbol)
        child.inc()
        if lag_s is not None:
            hist = self._lag.get(symbol)
            if hist is None:
                hist = self._lag[symbol] = self.lag.labels(symbol)
            hist.observe(lag_s)
