"""The live feed: sessions + snapshot fetcher + pipeline + publisher, driven by one feed thread.

Every input (frames from N connections, REST snapshots, opens/closes) arrives on one inbox queue
in receive order and is processed by the thread that calls :meth:`FeedService.run`; only that
thread touches the pipeline and the Kafka producer. An optional ``tap`` sees every input as it is
processed (the recorder writes it, so a recording replays in exactly the live order).
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from infra.backoff import Backoff
from infra.settings import FeedSettings
from producers.health import FeedEvents
from producers.metrics import FeedMetrics
from producers.pipeline import Callbacks, FeedPipeline, RecordSink
from producers.session import AttemptBudget, SessionSlot
from producers.snapshots import SnapshotFetcher
from producers.venue import VenueAdapter

log = logging.getLogger(__name__)

Tap = Callable[[str, str, str | bytes, int], None]
"""``tap(kind, url, data, t)`` with kind ``open`` | ``ws`` | ``rest`` (the recording format)."""

_TICK_NS = 20_000_000
_PROGRESS_NS = 10_000_000_000


def producer_id() -> str:
    """Return an id unique to this process run (prefix of FeedEvent ids)."""
    return f"{socket.gethostname()}-{os.getpid()}-{time.time_ns() // 1_000_000}"


class FeedService:
    """Run one venue's feed until :meth:`stop`."""

    def __init__(
        self,
        adapter: VenueAdapter,
        settings: FeedSettings,
        symbols: list[str],
        sink: RecordSink,
        metrics: FeedMetrics,
        *,
        clock: Callable[[], int] = time.time_ns,
        poll: Callable[[], None] = lambda: None,
        tap: Tap | None = None,
        connections: int | None = None,
        events: FeedEvents | None = None,
        resume: dict[str, int] | None = None,
    ) -> None:
        self._clock = clock
        self._poll = poll
        self._tap = tap
        self._unsynced_unhealthy_s = settings.unsynced_unhealthy_s
        self._inbox: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self.events = events or FeedEvents(adapter.venue, producer_id())
        self._fetcher = SnapshotFetcher(
            lambda s: adapter.snapshot_url(settings.rest_url, s), adapter.http_error, self._inbox, clock,
            timeout_s=settings.snapshot_timeout_s, min_interval_s=settings.snapshot_min_interval_s,
        )
        self._history = SnapshotFetcher(
            lambda s: adapter.trades_url(settings.rest_url, s, 0), adapter.http_error, self._inbox, clock,
            timeout_s=settings.snapshot_timeout_s, min_interval_s=settings.snapshot_min_interval_s,
            failed_kind="trades_failed",
        )
        self._reference = SnapshotFetcher(
            lambda s: adapter.instrument_url(settings.rest_url, s) or "", adapter.http_error, self._inbox, clock,
            timeout_s=settings.snapshot_timeout_s, min_interval_s=settings.snapshot_min_interval_s,
            failed_kind="reference_failed",
        )
        self._reference_symbols = [s for s in symbols if adapter.instrument_url(settings.rest_url, s) is not None]
        self.pipeline = FeedPipeline(
            adapter, symbols, sink, self.events, metrics,
            callbacks=Callbacks(
                self._fetcher.request, self._replace, self._rollover,
                lambda s, from_id: self._history.request(s, adapter.trades_url(settings.rest_url, s, from_id)),
            ),
            hold_ns=settings.reorder_hold_ms * 1_000_000,
            stall_timeout_ns=int(settings.stall_timeout_s * 1e9),
            silence_timeout_ns=int(settings.silence_timeout_s * 1e9),
            max_book_buffer=settings.max_book_buffer,
            max_backfill_trades=settings.max_backfill_trades,
            refused_pause_ns=int(settings.snapshot_refused_pause_s * 1e9),
            refused_max_pause_ns=int(settings.snapshot_refused_max_pause_s * 1e9),
            snapshot_interval_ns=int(settings.book_snapshot_interval_s * 1e9),
        )
        for symbol, last_id in (resume or {}).items():
            self.pipeline.resume_trades(symbol, last_id)
        url = adapter.stream_url(settings.ws_url, symbols)
        budget = AttemptBudget(settings.max_attempts, settings.attempt_window_s, clock)
        self.slots = [
            SessionSlot(
                f"c{i}", url, self._inbox, budget, clock, max_age_s=settings.max_connection_age_s,
                backoff=Backoff(settings.backoff_base_s, settings.backoff_cap_s),
                subscribe=tuple(adapter.subscribe_messages(symbols)),
            )
            for i in range(connections or settings.connections)
        ]
        self._open: dict[str, str] = {}
        self.frames = 0

    def _slot_of(self, connection_id: str) -> SessionSlot | None:
        name = connection_id.partition("#")[0]
        return next((s for s in self.slots if s.name == name), None)

    def _replace(self, connection_id: str) -> None:
        slot = self._slot_of(connection_id)
        if slot is not None:
            slot.replace(connection_id)

    def _rollover(self, connection_id: str) -> None:
        slot = self._slot_of(connection_id)
        if slot is not None:
            slot.rollover()

    def stop(self) -> None:
        """Ask :meth:`run` to return (thread-safe; safe from a signal handler)."""
        self._stop.set()

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Return ``(healthy, detail)`` for ``/health``.

        Healthy: a connection is open, every book has been true once (ready), and none has been
        unsynced for ``unsynced_unhealthy_s`` (a resync takes a second or two; a book stuck longer,
        e.g. its snapshots refused, fails the probe so supervisord or Kubernetes act).
        """
        status = self.pipeline.status()
        unsynced = self.pipeline.unsynced_s(self._clock())
        stuck = sorted(s for s, seconds in unsynced.items() if seconds >= self._unsynced_unhealthy_s)
        ok = bool(self._open) and all(s["synced_once"] for s in status.values()) and not stuck
        for symbol, seconds in unsynced.items():
            status[symbol]["unsynced_s"] = seconds
        return ok, {"connections": sorted(self._open), "symbols": status, "frames": self.frames, "stuck_books": stuck}

    def run(self, until: Callable[[], bool] = lambda: False) -> None:
        """Process inputs until :meth:`stop` or ``until()``; then close every connection."""
        self._fetcher.start()
        self._history.start()
        self._reference.start()
        for symbol in self._reference_symbols:
            self._reference.request(symbol)
        for slot in self.slots:
            slot.start()
        pipeline, inbox, tap, clock = self.pipeline, self._inbox, self._tap, self._clock
        next_tick = clock() + _TICK_NS
        next_progress = clock() + _PROGRESS_NS
        try:
            while not self._stop.is_set() and not until():
                try:
                    item = inbox.get(timeout=0.02)
                except queue.Empty:
                    item = None
                if item is not None:
                    self._dispatch(item, pipeline, tap)
                    for _ in range(1000):
                        try:
                            self._dispatch(inbox.get_nowait(), pipeline, tap)
                        except queue.Empty:
                            break
                now = clock()
                if now >= next_tick:
                    pipeline.tick(now)
                    self._poll()
                    next_tick = now + _TICK_NS
                if now >= next_progress:
                    log.info("feed progress", extra={"frames": self.frames, "connections": sorted(self._open),
                                                     "books": pipeline.status(), "dead_letters": pipeline.dead_letters})
                    next_progress = now + _PROGRESS_NS
        finally:
            for slot in self.slots:
                slot.stop()
            self._fetcher.stop()
            self._history.stop()
            self._reference.stop()
            while True:
                try:
                    self._dispatch(inbox.get_nowait(), pipeline, None)
                except queue.Empty:
                    break
            # A socket thread slower than the stop timeout has not reported its close yet: record it now.
            for conn in list(self._open):
                self._dispatch(("close", conn, "feed stopping", clock()), pipeline, None)

    def _dispatch(self, item: tuple[Any, ...], pipeline: FeedPipeline, tap: Tap | None) -> None:
        # task boundary: one input that trips a bug must not stop the feed
        try:
            self._process(item, pipeline, tap)
        except Exception as exc:
            raw = item[2] if len(item) > 2 and isinstance(item[2], str | bytes) else repr(item)
            log.exception("feed input failed", extra={"kind": item[0], "raw": str(raw)[:500]})
            pipeline.internal_error(str(item[1]), raw, exc, self._clock())

    def _process(self, item: tuple[Any, ...], pipeline: FeedPipeline, tap: Tap | None) -> None:
        kind = item[0]
        if kind == "frame":
            _, conn, data, t = item
            self.frames += 1
            if tap is not None:
                tap("ws", self._open.get(conn, ""), data, t)
            pipeline.frame(conn, data, t)
        elif kind == "rest":
            _, url, body, t = item
            if tap is not None:
                tap("rest", url, body, t)
            pipeline.rest(url, body, t)
        elif kind == "open":
            _, conn, url, t = item
            self._open[conn] = url
            if tap is not None:
                tap("open", url, "", t)
            pipeline.open(conn, url, t)
        elif kind == "close":
            _, conn, reason, t = item
            self._open.pop(conn, None)
            pipeline.close(conn, reason, t)
        elif kind == "rest_failed":
            _, symbol, reason, retriable, t = item
            pipeline.snapshot_failed(symbol, reason, retriable, t)
        elif kind == "trades_failed":
            _, symbol, reason, retriable, t = item
            pipeline.trades_failed(symbol, reason, retriable, t)
        elif kind == "reference_failed":
            _, symbol, reason, retriable, t = item
            pipeline.instrument_failed(symbol, reason, retriable, t)
        elif kind == "rollover":
            _, conn, detail, t = item
            pipeline.rollover(conn, detail, t)
