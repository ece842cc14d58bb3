"""Fixtures of the executor's integration tests: a simulator sized for trading, and a market-data bridge."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from infra.settings import KafkaSettings
from sim_exchange.process import start_sim_exchange
from tests.integration.executor.harness import MarketBridge


@pytest.fixture(scope="session")
def executor_sim_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real simulator with moderate flow and limits high enough for 1,000-signal runs; stopped by pid.

    The venue's own limits are not what these tests exercise (429 handling is driven by a fault), so
    ORDERS and REQUEST_WEIGHT limits are raised; every test trades on its own fresh account.
    """
    log_path = tmp_path_factory.mktemp("executor_sim") / "sim.log"
    sim = start_sim_exchange(log_path=log_path, seed=7, symbols="BTCUSDT,ETHUSDT", events_per_s=40,
                             orders_limit_10s=5000, weight_limit_1m=10_000_000)
    try:
        yield sim.rest_url
    finally:
        sim.stop()


@pytest.fixture(scope="session")
def market_bridge(kafka_settings: KafkaSettings, executor_sim_url: str) -> Iterator[MarketBridge]:
    """Publishes the sim's book to ``md.bbo`` / ``md.book`` for the whole session."""
    bridge = MarketBridge(kafka_settings, executor_sim_url).start()
    time.sleep(0.5)
    try:
        yield bridge
    finally:
        bridge.stop()
