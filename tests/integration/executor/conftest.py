"""Fixtures of the executor's integration tests: a real simulated exchange and a market-data bridge."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from infra.broker import free_port
from infra.settings import KafkaSettings
from tests.integration.executor.harness import MarketBridge


@pytest.fixture(scope="session")
def executor_sim_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``tickpipe sim-exchange`` subprocess on a free port (moderate flow); stopped by pid."""
    port = free_port()
    log = (tmp_path_factory.mktemp("sim") / "sim.log").open("wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKPIPE_")} | {"TICKPIPE_SIM__ORDERS_LIMIT_10S": "5000"}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "tickpipe"), "sim-exchange", "--port", str(port), "--events-per-s", "40", "--weight-limit", "10000000"],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{url}/api/v3/ping", timeout=1).ok:
                    break
            except requests.RequestException:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sim exchange did not start on {port}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="session")
def market_bridge(kafka_settings: KafkaSettings, executor_sim_url: str) -> Iterator[MarketBridge]:
    """Publishes the sim's book to ``md.bbo`` / ``md.book`` for the whole session."""
    bridge = MarketBridge(kafka_settings, executor_sim_url).start()
    time.sleep(0.5)
    try:
        yield bridge
    finally:
        bridge.stop()
