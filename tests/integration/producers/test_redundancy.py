"""Redundant connections under faults: for a minute, one of two connections is dropped or stalled
every few seconds; md.trades must hold every exchange trade once, none missing."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable

import pytest

from schemas.topics import Topic
from sim_exchange.process import SimExchangeProcess
from tests.integration.producers.checks import (
    assert_deltas_chain,
    assert_trades_match_exchange,
    trades_by_symbol,
)
from tests.integration.producers.conftest import Broker, RunningFeed, consume_all

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
FAULT_EVERY_S = 3.0
DURATION_S = float(os.environ.get('FEED_TEST_DURATION_S', '60'))


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_one_of_two_connections_dropped_or_stalled_every_few_seconds_loses_and_repeats_no_trade(
    own_broker: Broker,
    sim_exchange_factory: Callable[..., SimExchangeProcess],
    start_feed: Callable[..., RunningFeed],
) -> None:
    # Arrange
    sim = sim_exchange_factory(seed=11, symbols=",".join(SYMBOLS), events_per_s=400)
    feed = start_feed(own_broker.kafka, sim.ws_url, sim.rest_url, SYMBOLS, connections=2, stall_timeout_s=0.5)
    deadline = time.monotonic() + 15
    while len(sim.connections()) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    rng = random.Random(3)
    faults: list[str] = []
    # Act: alternate drops and stalls on one connection at a time
    end = time.monotonic() + DURATION_S
    while time.monotonic() < end:
        time.sleep(FAULT_EVERY_S)
        conns = sim.connections()
        if len(conns) < 2:
            continue  # the previous victim is still reconnecting: never hit both
        victim = rng.choice(conns)["id"]
        kind = rng.choice(["drop", "stall"])
        spec = {"connections": victim, "seconds": 2.0} if kind == "stall" else {"connections": victim}
        hit = sim.set_faults({kind: spec})["applied"]
        assert hit and hit[0]["connections"] == [victim], hit
        faults.append(kind)
    last_ids = {s: sim.trades(s)[-1]["id"] for s in SYMBOLS}
    time.sleep(1.5)
    assert feed.stop() == 0
    # Assert
    assert "drop" in faults and "stall" in faults and len(faults) >= DURATION_S / FAULT_EVERY_S / 2, faults
    trades = trades_by_symbol(consume_all(own_broker.kafka, Topic.TRADES, 100))
    for symbol in SYMBOLS:
        assert_trades_match_exchange(trades[symbol], sim, symbol, last_ids[symbol])
        assert len(trades[symbol]) > 100
    assert_deltas_chain([d for _, d in consume_all(own_broker.kafka, Topic.BOOK, 10)])
    health = [e for _, e in consume_all(own_broker.kafka, Topic.HEALTH, 10)]
    assert any(e["kind"] == "stalled" for e in health)
    timeline = [(e["kind"], e["connection_id"], e["detail"][:40]) for e in health if e["connection_id"]]
    assert sum(e["kind"] == "connect" for e in health) >= 2 + len(faults), (faults, timeline)  # every victim replaced
    assert not any(e["kind"] == "gap" and e["symbol"] in SYMBOLS and "trades" in e["detail"] for e in health)
