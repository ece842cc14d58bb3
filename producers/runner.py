"""Process-level wiring of the feed commands: logging, metrics, signals, Kafka, flush on exit."""

from __future__ import annotations

import logging
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import KafkaException
from prometheus_client import CollectorRegistry

from infra.heap import settle_heap
from infra.logs import configure_logging
from infra.observability import serve_observability
from infra.settings import FeedSettings, Settings
from producers.errors import ParseError
from producers.health import FeedEvents
from producers.metrics import FeedMetrics
from producers.pipeline import FeedPipeline
from producers.publisher import KafkaPublisher
from producers.recording import Recorder, play
from producers.registry import adapter_for
from producers.resume import last_trade_ids
from producers.service import FeedService, producer_id

log = logging.getLogger(__name__)


def _on_signals(stop: Callable[[], None]) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop())


def run_feed(settings: Settings, feed: FeedSettings, symbols: list[str]) -> int:
    """Run the live feed until SIGTERM/SIGINT; flush Kafka; return the exit code."""
    configure_logging("feed", settings.log_level)
    adapter = adapter_for(feed.venue)
    metrics = FeedMetrics()
    events = FeedEvents(adapter.venue, producer_id())
    publisher = KafkaPublisher(
        settings.kafka, events, metrics, time.time_ns, buffer_max_records=feed.buffer_max_records,
        delivery_timeout_ms=feed.delivery_timeout_ms, backpressure_after_s=feed.backpressure_after_s,
    )
    try:
        resume = last_trade_ids(settings.kafka, adapter.venue, symbols)
    except KafkaException as exc:
        log.warning("could not read md.trades to resume; trades missed while down stay missing", extra={"error": str(exc)})
        resume = {}
    service = FeedService(
        adapter, feed, symbols, publisher.publish, metrics, poll=publisher.poll, events=events, resume=resume,
    )
    server = serve_observability(settings.metrics_host, feed.metrics_port, service.health)
    log.info("feed starting", extra={
        "venue": adapter.venue, "symbols": symbols, "connections": feed.connections,
        "ws_url": feed.ws_url, "rest_url": feed.rest_url, "bootstrap": settings.kafka.bootstrap,
        "metrics_port": server.server_address[1], "resume_after_trade_ids": resume,
    })
    _on_signals(service.stop)
    settle_heap(settings.gc_freeze)
    try:
        service.run()
    finally:
        left = publisher.flush(feed.flush_timeout_s)
        server.shutdown()
        log.info("feed stopped", extra={
            "frames": service.frames, "delivered": publisher.delivered, "failed": publisher.failed,
            "dropped": publisher.dropped, "unflushed": left,
        })
    return 0 if left == 0 else 1


def run_record(settings: Settings, feed: FeedSettings, symbols: list[str], out: Path, seconds: float) -> int:
    """Record raw frames and snapshots from one connection to ``out``."""
    configure_logging("record", settings.log_level)
    adapter = adapter_for(feed.venue)
    recorder = Recorder(out)
    service = FeedService(
        adapter, feed, symbols, lambda *_: None, FeedMetrics(CollectorRegistry()), tap=recorder, connections=1,
    )
    _on_signals(service.stop)
    deadline = time.monotonic() + seconds if seconds > 0 else None
    try:
        service.run(until=lambda: deadline is not None and time.monotonic() >= deadline)
    finally:
        recorder.close()
    print(f"recorded {recorder.lines} lines ({service.frames} frames) to {out}", file=sys.stderr)
    return 0


def _printable(record_name: str, record: dict[str, Any]) -> bytes:
    if record_name == "DeadLetter":
        record = {**record, "raw": record["raw"].decode("utf-8", "replace")}
    return orjson.dumps({"type": record_name, **record})


def run_playback(settings: Settings, venue: str, path: Path, final_books: int, to_kafka: bool) -> int:
    """Replay ``path``; print JSON Lines (or publish); then print the final books if asked."""
    configure_logging("playback", settings.log_level)
    adapter = adapter_for(venue)
    events = FeedEvents(adapter.venue, f"playback-{path.name}")
    metrics = FeedMetrics(CollectorRegistry())
    out = sys.stdout.buffer
    publisher: KafkaPublisher | None = None
    if to_kafka:
        publisher = KafkaPublisher(
            settings.kafka, events, metrics, time.time_ns, buffer_max_records=settings.feed.buffer_max_records,
            delivery_timeout_ms=settings.feed.delivery_timeout_ms,
        )
        sink = publisher.publish
    else:
        def sink(topic: str, key: bytes, record_name: str, record: dict[str, Any]) -> None:
            out.write(_printable(record_name, record) + b"\n")

    pipeline = FeedPipeline(
        adapter, [], sink, events, metrics,
        hold_ns=settings.feed.reorder_hold_ms * 1_000_000,
        # a venue that subscribes by message names no symbols in its URL: playback learns them from the frames
        learn_symbols=bool(adapter.subscribe_messages(["X"])),
    )
    try:
        lines = play(path, pipeline)
    except ParseError as exc:
        print(f"playback failed: {exc}", file=sys.stderr)
        return 2
    for symbol in sorted(pipeline.symbols):
        book = pipeline.published_book(symbol)
        if final_books and book is not None:
            bids, asks = book.top(final_books)
            out.write(orjson.dumps({
                "type": "book", "venue": adapter.venue, "symbol": symbol,
                "last_update_id": pipeline.status()[symbol]["last_update_id"], "bids": bids, "asks": asks,
            }) + b"\n")
    out.flush()
    if publisher is not None:
        left = publisher.flush(settings.feed.flush_timeout_s)
        print(f"published {publisher.delivered} records from {lines} lines; {left} unflushed", file=sys.stderr)
        return 0 if left == 0 else 1
    return 0
