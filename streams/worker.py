"""Run one streams worker: ensure topics, serve /health + /metrics, run the Faust worker until SIGTERM."""

from __future__ import annotations

import logging
from typing import Any

from infra.heap import settle_heap
from infra.observability import serve_observability
from infra.settings import Settings
from infra.topics import create_topics

log = logging.getLogger(__name__)


def run_worker(settings: Settings) -> None:
    """Block running the Faust worker; Faust's own signal handling stops it cleanly (flush, commit, close)."""
    import faust

    from streams.app import build_app

    created = create_topics(settings.kafka)
    if created:
        log.info("created topics", extra={"topics": created})
    settings.streams.data_dir.mkdir(parents=True, exist_ok=True)
    rt = build_app(settings)

    def health() -> tuple[bool, dict[str, Any]]:
        assigned = sorted(f"{tp.topic}:{tp.partition}" for tp in rt.app.consumer.assignment()) if rt.app.started else []
        ok = rt.app.started and not rt.app.crashed
        return ok, {"app_id": settings.streams.app_id, "assigned": assigned, "stale": sorted(rt.stale)}

    @rt.app.task
    async def settle() -> None:
        # the app has started: what start-up built leaves the collector's full passes
        settle_heap(settings.gc_freeze)

    server = serve_observability(settings.metrics_host, settings.streams.web_port, health)
    log.info("streams worker starting", extra={"web_port": server.server_address[1], "app_id": settings.streams.app_id})
    worker = faust.Worker(
        rt.app, loglevel=settings.log_level, quiet=True, override_logging=False, redirect_stdouts=False
    )
    try:
        worker.execute_from_commandline()
    finally:
        server.shutdown()
