"""Websocket connection hygiene, venue-neutral: one thread per connection, one supervisor per slot.

* pong: websocket-client answers every ping frame with a pong carrying its payload;
* reconnect with exponential backoff and jitter (:class:`Backoff`), reset once a connection has
  delivered frames for a while;
* a process-wide :class:`AttemptBudget` keeps connection attempts under the venue's limit
  (Binance: 300 per 5 minutes per IP);
* planned rollover: before a connection reaches the venue's maximum age (Binance: 24 h), or when
  the venue announces a shutdown, the slot opens a replacement and closes the old connection only
  once the new one delivers frames, so the redundant streams never have a hole.

Frames, opens and closes go into one ``inbox`` queue consumed by the feed thread.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from collections import deque
from collections.abc import Callable

import websocket

from infra.backoff import Backoff

log = logging.getLogger(__name__)

_NS = 1_000_000_000


class AttemptBudget:
    """At most ``max_attempts`` connection attempts in any ``window_s`` (thread-safe, clock injected)."""

    def __init__(self, max_attempts: int, window_s: float, clock: Callable[[], int]) -> None:
        self._max = max_attempts
        self._window_ns = int(window_s * _NS)
        self._clock = clock
        self._attempts: deque[int] = deque()
        self._lock = threading.Lock()

    def try_acquire(self) -> float:
        """Record an attempt and return 0.0, or return the seconds to wait before one is allowed."""
        with self._lock:
            now = self._clock()
            while self._attempts and now - self._attempts[0] >= self._window_ns:
                self._attempts.popleft()
            if len(self._attempts) < self._max:
                self._attempts.append(now)
                return 0.0
            return (self._attempts[0] + self._window_ns - now) / _NS


class WsConnection:
    """One websocket connection in its own thread; reports open/frame/close to the inbox."""

    def __init__(
        self, connection_id: str, url: str, inbox: queue.SimpleQueue, clock: Callable[[], int],
        subscribe: tuple[str, ...] = (),
    ) -> None:
        self.connection_id = connection_id
        self.url = url
        self._subscribe = subscribe
        self._inbox = inbox
        self._clock = clock
        self.opened_at: int | None = None
        self.frames = 0
        self.first_frame = threading.Event()
        self.done = threading.Event()
        self._app = websocket.WebSocketApp(
            url, on_open=self._on_open, on_message=self._on_message, on_close=self._on_close, on_error=self._on_error,
        )
        self._error = ""
        self._thread = threading.Thread(target=self._run, name=f"ws:{connection_id}", daemon=True)

    def start(self) -> None:
        """Connect in the background."""
        self._thread.start()

    def close(self) -> None:
        """Close the socket (the close is reported to the inbox)."""
        self._app.keep_running = False
        ws = self._app.sock
        raw = getattr(ws, "sock", None)
        try:
            if raw is not None:
                # shutdown wakes the thread blocked in recv on a silent socket; close alone does not
                raw.shutdown(socket.SHUT_RDWR)
            if ws is not None:
                ws.close()
        except OSError:
            log.debug("close of a dead socket", exc_info=True)

    def join(self, timeout_s: float) -> None:
        """Wait for the connection thread to end."""
        self._thread.join(timeout_s)

    def _run(self) -> None:
        try:
            # ping_interval=0: the venue pings us (Binance every 20 s); websocket-client pongs each ping
            self._app.run_forever(skip_utf8_validation=True, ping_interval=0)
        except Exception as exc:  # task boundary: report and let the slot reconnect
            self._error = f"{type(exc).__name__}: {exc}"
            log.warning("websocket thread failed", extra={"connection": self.connection_id}, exc_info=True)
        finally:
            if self.opened_at is not None:
                self._inbox.put(("close", self.connection_id, self._error or "closed", self._clock()))
            self.done.set()

    def _on_open(self, ws: websocket.WebSocketApp) -> None:
        self.opened_at = self._clock()
        self._inbox.put(("open", self.connection_id, self.url, self.opened_at))
        for text in self._subscribe:  # venues that subscribe by message (Kraken, Coinbase); none for Binance
            ws.send(text)

    def _on_message(self, _ws: websocket.WebSocketApp, data: str | bytes) -> None:
        self._inbox.put(("frame", self.connection_id, data, self._clock()))
        self.frames += 1
        if self.frames == 1:
            self.first_frame.set()

    def _on_close(self, _ws: websocket.WebSocketApp, code: int | None, reason: str | None) -> None:
        if code is not None and not self._error:
            self._error = f"close code {code} {reason or ''}".strip()

    def _on_error(self, _ws: websocket.WebSocketApp, error: Exception) -> None:
        self._error = f"{type(error).__name__}: {error}"


class SessionSlot:
    """Keeps one redundant connection alive: reconnect, replace on demand, roll over before max age."""

    def __init__(
        self,
        name: str,
        url: str,
        inbox: queue.SimpleQueue,
        budget: AttemptBudget,
        clock: Callable[[], int],
        *,
        max_age_s: float,
        backoff: Backoff,
        rollover_grace_s: float = 10.0,
        subscribe: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self._url = url
        self._subscribe = subscribe
        self._inbox = inbox
        self._budget = budget
        self._clock = clock
        self._max_age_ns = int(max_age_s * _NS)
        self._backoff = backoff
        self._grace_s = rollover_grace_s
        self._generation = 0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._replace: str | None = None
        self._rollover = False
        self._thread = threading.Thread(target=self._supervise, name=f"slot:{name}", daemon=True)

    def start(self) -> None:
        """Start supervising in the background."""
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Close the connection and stop reconnecting."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout_s)

    def replace(self, connection_id: str) -> None:
        """Close ``connection_id`` (stalled) and connect again, if it is still this slot's connection."""
        self._replace = connection_id
        self._wake.set()

    def rollover(self) -> None:
        """Open a replacement now and retire the current connection once the replacement delivers."""
        self._rollover = True
        self._wake.set()

    def _connect(self) -> WsConnection | None:
        while not self._stop.is_set():
            wait = self._budget.try_acquire()
            if wait == 0.0:
                self._generation += 1
                conn = WsConnection(
                    f"{self.name}#{self._generation}", self._url, self._inbox, self._clock, self._subscribe,
                )
                conn.start()
                return conn
            log.warning("connection attempt budget exhausted; waiting", extra={"slot": self.name, "wait_s": round(wait, 1)})
            self._stop.wait(min(wait, 5.0))
        return None

    def _supervise(self) -> None:
        conn = self._connect()
        while conn is not None and not self._stop.is_set():
            self._wake.wait(0.1)
            self._wake.clear()
            if self._stop.is_set():
                break
            if self._replace is not None:
                target, self._replace = self._replace, None
                if target == conn.connection_id:
                    # connect at once: waiting for the stalled thread to notice could take seconds
                    log.warning("replacing stalled connection", extra={"connection": target})
                    conn.close()
                    conn = self._connect()
                    continue
            if conn.done.is_set():
                if conn.frames:
                    # it worked (cf. cryptofeed: reset after a successful subscribe); the attempt
                    # budget still bounds a venue that accepts and drops at once
                    self._backoff.reset()
                delay = self._backoff.next_delay()
                log.info("reconnecting", extra={"slot": self.name, "delay_s": round(delay, 3)})
                if self._stop.wait(delay):
                    break
                conn = self._connect()
                continue
            aged = conn.opened_at is not None and self._clock() - conn.opened_at >= self._max_age_ns
            if self._rollover or aged:
                self._rollover = False
                conn = self._roll_over(conn)
        if conn is not None:
            conn.close()
            conn.join(2.0)

    def _roll_over(self, old: WsConnection) -> WsConnection | None:
        log.info("rolling connection over", extra={"connection": old.connection_id})
        self._inbox.put(("rollover", old.connection_id, "planned rollover: replacement opened first", self._clock()))
        new = self._connect()
        if new is None:
            return old
        deadline = time.monotonic() + self._grace_s
        while time.monotonic() < deadline and not (new.first_frame.is_set() or new.done.is_set() or self._stop.is_set()):
            new.first_frame.wait(0.05)
        old.close()
        return new
