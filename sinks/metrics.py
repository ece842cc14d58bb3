"""Prometheus metrics of the sink (one module so every name is defined once)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES = Counter("tickpipe_sink_messages_total", "messages consumed", ["topic"])
ROWS = Counter("tickpipe_sink_rows_inserted_total", "rows acknowledged by ClickHouse", ["table"])
DEAD_LETTERS = Counter("tickpipe_sink_dead_letters_total", "undecodable messages written to dead_letters", ["topic"])
SKIPPED = Counter("tickpipe_sink_redelivered_skipped_total", "redelivered messages already archived", ["topic"])
INSERT_SECONDS = Histogram("tickpipe_sink_insert_seconds", "time of one acknowledged insert", ["table"])
INSERT_ERRORS = Counter("tickpipe_sink_insert_errors_total", "failed insert attempts (retried)", ["table"])
COMMITS = Counter("tickpipe_sink_commits_total", "offset commits after acknowledged batches")
COMMIT_ERRORS = Counter("tickpipe_sink_commit_errors_total", "failed offset commits (redelivery is harmless)")
BATCH_ROWS = Histogram("tickpipe_sink_batch_rows", "rows per flushed batch",
                       buckets=(1, 10, 100, 1_000, 10_000, 50_000, 100_000, 500_000))
PENDING_ROWS = Gauge("tickpipe_sink_pending_rows", "rows consumed but not yet acknowledged")
RETRYING = Gauge("tickpipe_sink_retrying", "1 while ClickHouse is unavailable and a batch is being retried")
