"""Prometheus metrics and a health endpoint, served from a daemon thread by every service."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Histogram, generate_latest

HealthCheck = Callable[[], tuple[bool, dict[str, Any]]]


def serve_observability(
    host: str, port: int, health: HealthCheck, registry: CollectorRegistry = REGISTRY
) -> ThreadingHTTPServer:
    """Serve ``/metrics`` (Prometheus text) and ``/health`` (JSON; 200 when healthy, else 503) on ``host``.

    ``host`` is the ``metrics_host`` setting: loopback locally, all addresses in a container, where
    Prometheus scrapes from another pod. Returns the server; call ``shutdown()`` on it to stop.
    Port 0 picks a free port (read it back from ``server.server_address``).
    """

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/metrics"):
                body, status, ctype = generate_latest(registry), 200, CONTENT_TYPE_LATEST
            elif self.path.startswith("/health"):
                ok, detail = health()
                body, status, ctype = orjson.dumps({"ok": ok, **detail}, default=str), 200 if ok else 503, "application/json"
            else:
                body, status, ctype = b"not found\n", 404, "text/plain"
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    watch_gc(registry)
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name=f"observability:{port}", daemon=True).start()
    return server


_GC_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
_gc_watched: set[int] = set()


def watch_gc(registry: CollectorRegistry = REGISTRY) -> None:
    """Time every garbage collection of this process as ``tickpipe_gc_pause_seconds{generation}``.

    A collection stops every thread of the service; a full one over a large heap takes milliseconds
    to tens of milliseconds, which shows up as tail latency on the hot path and nowhere else.
    Once per registry.
    """
    if id(registry) in _gc_watched:
        return
    _gc_watched.add(id(registry))
    pauses = Histogram("tickpipe_gc_pause_seconds", "time the process stood still in one garbage collection",
                       ["generation"], registry=registry, buckets=_GC_BUCKETS)
    by_generation = [pauses.labels(str(g)) for g in range(3)]
    started = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            by_generation[info["generation"]].observe(time.perf_counter() - started[0])

    gc.callbacks.append(on_gc)
