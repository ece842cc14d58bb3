"""Pong to every ping: an exchange pinging every 0.3 s and dropping any connection without a pong
for 1 s keeps both feed connections open (and inbound traffic stays under its 5 msgs/s limit)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from schemas.topics import Topic
from sim_exchange.process import SimExchangeProcess
from tests.integration.producers.conftest import Broker, RunningFeed, consume_all


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_connections_survive_frequent_pings_with_a_short_pong_timeout(
    own_broker: Broker,
    sim_exchange_factory: Callable[..., SimExchangeProcess],
    start_feed: Callable[..., RunningFeed],
) -> None:
    # Arrange
    sim = sim_exchange_factory(symbols="BTCUSDT", events_per_s=100, ping_interval_s=0.3, pong_timeout_s=1.0)
    feed = start_feed(own_broker.kafka, sim.ws_url, sim.rest_url, ["BTCUSDT"], connections=2)
    deadline = time.monotonic() + 20
    while len(sim.connections()) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    # Act
    time.sleep(5)
    conns = sim.connections()
    assert feed.stop() == 0
    # Assert: the same two connections lived through ~16 pings each
    assert len(conns) == 2 and all(c["age_s"] >= 4.5 for c in conns), conns
    health = [e for _, e in consume_all(own_broker.kafka, Topic.HEALTH, 2)]
    assert sum(e["kind"] == "connect" for e in health) == 2
