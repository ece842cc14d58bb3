"""The /metrics and /health server binds the configured address: loopback only, or every address."""

from __future__ import annotations

import gc

import pytest
import requests
from prometheus_client import CollectorRegistry, Counter

from infra.observability import serve_observability, watch_gc


def healthy() -> tuple[bool, dict[str, str]]:
    return True, {"state": "running"}


def test_every_address_binding_answers_on_another_address_of_the_host() -> None:
    registry = CollectorRegistry()
    Counter("probe_total", "probes", registry=registry).inc()
    server = serve_observability("0.0.0.0", 0, healthy, registry)
    port = server.server_address[1]
    try:
        health = requests.get(f"http://127.0.0.2:{port}/health", timeout=5)
        metrics = requests.get(f"http://127.0.0.2:{port}/metrics", timeout=5)
    finally:
        server.shutdown()

    assert health.status_code == 200 and health.json() == {"ok": True, "state": "running"}
    assert "probe_total 1.0" in metrics.text


def test_loopback_binding_refuses_another_address_of_the_host() -> None:
    server = serve_observability("127.0.0.1", 0, healthy, CollectorRegistry())
    port = server.server_address[1]
    try:
        assert requests.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.2:{port}/health", timeout=5)
    finally:
        server.shutdown()


def test_every_garbage_collection_is_timed_by_generation_once_per_registry() -> None:
    # Arrange
    registry = CollectorRegistry()
    watch_gc(registry)
    watch_gc(registry)  # a second call adds no second callback
    before = registry.get_sample_value("tickpipe_gc_pause_seconds_count", {"generation": "2"}) or 0.0
    # Act
    gc.collect(2)
    gc.collect(2)
    # Assert
    after = registry.get_sample_value("tickpipe_gc_pause_seconds_count", {"generation": "2"})
    assert after == before + 2
    assert registry.get_sample_value("tickpipe_gc_pause_seconds_sum", {"generation": "2"}) > 0
