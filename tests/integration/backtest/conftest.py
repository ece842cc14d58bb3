"""Fixtures of the backtest's integration tests: fresh archive databases (the sink tests' fixtures) and a
recorded market from the simulated exchange, made once per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sim_exchange.process import start_sim_exchange
from tests.integration.backtest.market import instruments, played_back, record_market
from tests.integration.sinks.conftest import archive, fresh_archive  # noqa: F401 (fixtures)

RECORD_S = 40.0


@pytest.fixture(scope="session")
def recorded_market(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, list[dict[str, Any]]]]:
    """``{topic: records}`` of 40 s of the simulator (seed 7, 500 book events/s, BTCUSDT and ETHUSDT)."""
    base: Path = tmp_path_factory.mktemp("backtest_market")
    sim = start_sim_exchange(log_path=base / "sim.log", seed=7, symbols="BTCUSDT,ETHUSDT", events_per_s=500)
    try:
        record_market(sim.rest_url, sim.ws_url, base / "market.jsonl", RECORD_S, "BTCUSDT,ETHUSDT")
        history = played_back(base / "market.jsonl")
        history["md.instruments"] = instruments(sim.rest_url, min(r["ts_recv"] for r in history["md.book"]))
    finally:
        sim.stop()
    yield history
