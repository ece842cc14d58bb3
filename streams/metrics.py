"""Prometheus metrics of the stream processors."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECORDS_IN = Counter("tickpipe_streams_records_in_total", "input records taken by the agents", ["topic"])
RECORDS_OUT = Counter("tickpipe_streams_records_out_total", "records sent by the agents", ["topic"])
DEAD_LETTERS = Counter("tickpipe_streams_dead_letters_total", "inputs sent to dlq", ["reason"])
REPLAYED = Counter(
    "tickpipe_streams_replayed_total", "inputs skipped because table state already holds them (after a crash)", ["topic"]
)
SEEDS = Counter(
    "tickpipe_streams_book_seeds_total", "md.book.snapshots records taken by a late joiner (applied, older than the "
    "book, rejected to dlq)", ["result"],
)
BOOK_NOTES = Counter("tickpipe_streams_book_skips_total", "book updates that produced no features", ["why"])
CROSS_SKIPS = Counter(
    "tickpipe_streams_cross_skips_total", "cross-venue inputs that produced no features.cross record", ["why"]
)
STALE = Gauge("tickpipe_streams_stale_instruments", "instruments whose book is stale")
BATCH_SECONDS = Histogram(
    "tickpipe_streams_batch_seconds", "time to process one agent batch", ["agent"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
BATCH_RECORDS = Histogram(
    "tickpipe_streams_batch_records", "input records per agent batch (adaptive: what was buffered when the agent was ready)",
    ["agent"], buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000),
)
