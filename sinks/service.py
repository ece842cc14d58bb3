"""``tickpipe sink``: wire settings, the archive migration, the loop, signals and observability."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from infra.backoff import Backoff
from infra.heap import settle_heap
from infra.observability import serve_observability
from infra.settings import Settings
from schemas.topics import Topic
from sinks.client import connect
from sinks.consumer import SinkLoop
from sinks.migrate import MigrationReport, ensure_database, migrate

log = logging.getLogger(__name__)


def selected_topics(spec: str) -> list[str]:
    """Return the topics named in ``spec`` (comma-separated; empty = every topic), checked."""
    names = [t.strip() for t in spec.split(",") if t.strip()] or [t.value for t in Topic]
    known = {t.value for t in Topic}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown topic(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return names


def _open_archive(settings: Settings, stop: threading.Event) -> tuple[Client, MigrationReport]:
    sink, warehouse = settings.sink, settings.warehouse
    backoff = Backoff(sink.retry_initial_ms / 1000, sink.retry_max_ms / 1000)
    attempt = 0
    while True:
        try:
            admin = connect(warehouse, database=None, timeout_s=sink.insert_timeout_s)
            ensure_database(admin, warehouse.database)
            admin.close()
            client = connect(warehouse, timeout_s=sink.insert_timeout_s, compress=sink.compress)
            return client, migrate(client, warehouse.database)
        except (OperationalError, DatabaseError) as exc:
            pause = backoff.delay(attempt)
            log.warning("ClickHouse not ready at start; retrying", extra={"url": warehouse.url, "error": str(exc)[:300],
                                                                          "retry_in_s": round(pause, 3)})
            if stop.wait(pause):
                raise SystemExit(1) from exc
            attempt += 1


def run_sink(settings: Settings, topics: list[str]) -> None:
    """Migrate the archive, then consume ``topics`` into it until SIGTERM/SIGINT."""
    sink, warehouse = settings.sink, settings.warehouse
    early_stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: early_stop.set())
    client, report = _open_archive(settings, early_stop)
    loop = SinkLoop(settings.kafka, sink, client, topics)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("stop requested; flushing, committing, closing", extra={"signal": signal.Signals(signum).name})
        loop.stop()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    server = serve_observability(settings.metrics_host, sink.metrics_port, loop.health)
    log.info("sink started", extra={"url": warehouse.url, "database": warehouse.database, "topics": topics,
                                    "created_tables": report.created_tables, "added_columns": report.added_columns,
                                    "metrics_port": server.server_address[1]})
    settle_heap(settings.gc_freeze)
    try:
        loop.run()
    finally:
        server.shutdown()
        client.close()
