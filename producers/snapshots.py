"""REST requests fetched off the feed thread (depth snapshots, trade history pages), so frames keep flowing meanwhile."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

import requests

from producers.errors import FeedError

log = logging.getLogger(__name__)


class SnapshotFetcher:
    """Fetch one REST answer per requested symbol; results go to the inbox as ``rest`` / ``failed_kind``.

    A refused request is classified by the venue's ``http_error`` (retriable or not); the pipeline
    asks again only for retriable ones.

    Requests for a symbol already queued are merged; fetches of one symbol are at least
    ``min_interval_s`` apart (a stale snapshot is fetched again, but not in a tight loop).
    """

    def __init__(
        self,
        url_of: Callable[[str], str],
        http_error: Callable[[int, bytes], FeedError],
        inbox: queue.SimpleQueue,
        clock: Callable[[], int],
        *,
        timeout_s: float = 10.0,
        min_interval_s: float = 0.25,
        failed_kind: str = "rest_failed",
    ) -> None:
        self._url_of = url_of
        self._http_error = http_error
        self._inbox = inbox
        self._clock = clock
        self._timeout_s = timeout_s
        self._min_interval_s = min_interval_s
        self._failed_kind = failed_kind
        self._urls: dict[str, str] = {}
        self._requests: queue.Queue[str | None] = queue.Queue()
        self._queued: set[str] = set()
        self._last_fetch: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()  # cuts short a pacing or Retry-After pause
        self._session = requests.Session()
        self._thread = threading.Thread(target=self._run, name="snapshots", daemon=True)

    def start(self) -> None:
        """Start the fetch thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop after the fetch in progress (a pause between fetches ends at once)."""
        self._stopping.set()
        self._requests.put(None)
        self._thread.join(self._timeout_s + 1)

    def request(self, symbol: str, url: str | None = None) -> None:
        """Ask for ``url`` (default ``url_of(symbol)``) on behalf of ``symbol`` (thread-safe; the newest url wins)."""
        with self._lock:
            if url is not None:
                self._urls[symbol] = url
            if symbol in self._queued:
                return
            self._queued.add(symbol)
        self._requests.put(symbol)

    def _run(self) -> None:
        while (symbol := self._requests.get()) is not None:
            with self._lock:
                self._queued.discard(symbol)
                url = self._urls.pop(symbol, None) or self._url_of(symbol)
            wait = self._last_fetch.get(symbol, 0.0) + self._min_interval_s - time.monotonic()
            if wait > 0 and self._stopping.wait(wait):
                return
            self._last_fetch[symbol] = time.monotonic()
            try:
                resp = self._session.get(url, timeout=self._timeout_s)
                body = resp.content
                if resp.status_code != 200:
                    error = self._http_error(resp.status_code, body)
                    log.warning("snapshot refused", extra={"symbol": symbol, "error": str(error), "retriable": error.retriable})
                    self._inbox.put((self._failed_kind, symbol, str(error), error.retriable, self._clock()))
                    retry_after = resp.headers.get("Retry-After", "")
                    # 429/418: the venue says how long
                    if retry_after.isdigit() and self._stopping.wait(min(float(retry_after), 60.0)):
                        return
                    continue
                self._inbox.put(("rest", url, body, self._clock()))
            except requests.RequestException as exc:
                log.warning("snapshot fetch failed", extra={"symbol": symbol, "error": str(exc)})
                self._inbox.put((self._failed_kind, symbol, f"{type(exc).__name__}: {exc}", True, self._clock()))
