"""Prometheus metrics of the feed, per connection and per symbol.

The ``connection`` label is the redundant slot (``c0``, ``c1``...), not each reconnection
(``c0#7``), so label cardinality stays fixed. Label children are cached: ``.labels()`` costs about
a microsecond, too much per frame.
"""


from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString


def slot_of(connection_id: str) -> str:
    """Return the slot of a connection id (``c0#7`` -> ``c0``)."""
    return connection_id.partition("#")[0]


_LAG_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class _HotMetrics(Collector):
    """Per-frame counters and the lag histogram kept in plain dicts and exported on scrape.

    A prometheus_client ``inc()``/``observe()`` takes a lock and costs about a microsecond, a
    large share of a frame's budget; a dict increment costs a tenth of that.
    """

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.bounds = list(buckets)
        self.frames: dict[tuple[str, str], int] = {}
        self.lag_counts: dict[str, list[int]] = {}
        self.lag_sums: dict[str, float] = {}

    def collect(self) -> Iterator[Metric]:
        frames = CounterMetricFamily(
            "tickpipe_feed_frames", "websocket frames received (rate() = frames/s)", labels=["connection", "symbol"]
        )
        for (conn, symbol), n in list(self.frames.items()):
            frames.add_metric([conn, symbol], n)
        yield frames
        lag = HistogramMetricFamily(
            "tickpipe_feed_venue_lag_seconds", "local receive time minus venue event time", labels=["symbol"]
        )
        for symbol, counts in list(self.lag_counts.items()):
            cumulative, buckets = 0, []
            for bound, n in zip([*self.bounds, float("inf")], counts, strict=True):
                cumulative += n
                buckets.append((floatToGoString(bound), cumulative))
            lag.add_metric([symbol], buckets, self.lag_sums[symbol])
        yield lag


class FeedMetrics:
    """Every feed metric; one instance per registry (tests and benchmarks pass a fresh registry)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self._hot = _HotMetrics(_LAG_BUCKETS)
        registry.register(self._hot)
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
        self._keys: dict[tuple[str, str], tuple[str, str]] = {}

    def frame(self, connection: str, symbol: str, lag_s: float | None) -> None:
        """Count one frame and observe its venue-to-receive lag."""
        hot = self._hot
        key = self._keys.get((connection, symbol))
        if key is None:
            key = self._keys[(connection, symbol)] = (slot_of(connection), symbol)
            hot.frames.setdefault(key, 0)
        hot.frames[key] += 1
        if lag_s is not None:
            counts = hot.lag_counts.get(symbol)
            if counts is None:
                counts = hot.lag_counts[symbol] = [0] * (len(hot.bounds) + 1)
                hot.lag_sums[symbol] = 0.0
            counts[bisect_left(hot.bounds, lag_s)] += 1
            hot.lag_sums[symbol] += lag_s
