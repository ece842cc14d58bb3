"""Wire the executor service: logging, venue client, metrics + /health, control topic, SIGTERM."""

from __future__ import annotations

import logging

from executor.control import ensure_control_topic
from executor.engine import Engine, install_sigterm
from executor.intake import StartAt
from executor.metrics import ExecutorMetrics
from executor.venue import BinanceVenue
from infra.heap import settle_heap
from infra.logs import configure_logging
from infra.observability import serve_observability
from infra.settings import Settings

log = logging.getLogger(__name__)

VENUES = {"binance": BinanceVenue}


def run_service(settings: Settings, venue: str, rest_url: str | None, start_at: StartAt | None) -> None:
    """Run the executor (or a replay when ``start_at`` is set) until SIGTERM / replay end."""
    configure_logging("executor", settings.log_level)
    if venue not in VENUES:
        raise SystemExit(f"unknown venue {venue!r}; known: {', '.join(VENUES)}")
    s = settings.executor.model_copy(update={"venue": venue, "rest_url": rest_url or settings.executor.rest_url})
    client = VENUES[venue](s.rest_url, s.api_key, s.api_secret, s.request_timeout_ms)
    ensure_control_topic(settings.kafka, s.control_topic)
    engine = Engine(s, settings.kafka, client, ExecutorMetrics(), start_at=start_at)
    install_sigterm(engine)
    server = serve_observability(settings.metrics_host, s.metrics_port, engine.health)
    log.info("executor starting", extra={"venue": venue, "rest_url": s.rest_url, "replay": start_at is not None})
    settle_heap(settings.gc_freeze)
    try:
        engine.run()
    finally:
        server.shutdown()
        log.info("executor stopped")
