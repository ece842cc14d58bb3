"""Broker unreachable for 10 s mid-stream (the Kafka JVM frozen with SIGSTOP): records wait in RAM, every
record arrives once, and a `backpressure` FeedEvent reports the outage."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from schemas.topics import Topic
from sim_exchange.process import SimExchangeProcess
from tests.integration.producers.checks import assert_trades_match_exchange, trades_by_symbol
from tests.integration.producers.conftest import Broker, RunningFeed, consume_all

SYMBOLS = ["BTCUSDT", "ETHUSDT"]


def _identity(topic: str, r: dict[str, Any]) -> tuple[Any, ...]:
    if topic == Topic.TRADES:
        return (r["symbol"], r["trade_id"])
    if topic == Topic.BOOK:
        return (r["symbol"], r["first_update_id"], r["last_update_id"], r["snapshot"])
    if topic == Topic.BBO:
        return (r["symbol"], r["update_id"])
    return (r["event_id"],)


@pytest.mark.integration
@pytest.mark.timeout(150)
def test_frozen_broker_for_10s_loses_and_duplicates_nothing(
    own_broker: Broker, sim_exchange: SimExchangeProcess, start_feed: Callable[..., RunningFeed]
) -> None:
    # Arrange
    feed = start_feed(own_broker.kafka, sim_exchange.ws_url, sim_exchange.rest_url, SYMBOLS, backpressure_after_s=3.0)
    deadline = time.monotonic() + 20
    while not feed.service.health()[0] and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2)
    # Act
    os.kill(own_broker.pid, signal.SIGSTOP)
    try:
        time.sleep(10)
        waiting_while_frozen = feed.publisher.waiting
    finally:
        os.kill(own_broker.pid, signal.SIGCONT)
    time.sleep(4)
    last_ids = {s: sim_exchange.trades(s)[-1]["id"] for s in SYMBOLS}
    time.sleep(1)
    assert feed.stop(flush_s=60) == 0
    # Assert
    assert waiting_while_frozen > 500, "records should have waited in RAM while the broker was frozen"
    assert feed.publisher.dropped == 0 and feed.publisher.failed == 0
    for topic in (Topic.TRADES, Topic.BOOK, Topic.BBO, Topic.HEALTH):
        produced = [_identity(topic, r) for _, r in feed.produced.get(topic, [])]
        consumed_records = consume_all(own_broker.kafka, topic, len(produced))
        consumed = [_identity(topic, r) for _, r in consumed_records]
        dupes = [k for k, n in Counter(consumed).items() if n > 1]
        assert not dupes, f"{topic}: {len(dupes)} records twice, e.g. {dupes[:3]}"
        missing = set(produced) - set(consumed)
        assert not missing, f"{topic}: {len(missing)} of {len(produced)} records missing"
        if topic == Topic.TRADES:
            trades = trades_by_symbol(consumed_records)
            for symbol in SYMBOLS:
                assert_trades_match_exchange(trades[symbol], sim_exchange, symbol, last_ids[symbol])
        if topic == Topic.HEALTH:
            # One event reports the freeze; a slow first acknowledgement on a loaded machine may add a short one.
            outage = [r for _, r in consumed_records if r["kind"] == "backpressure"]
            covering = [r for r in outage if r["count"] >= waiting_while_frozen // 2]
            assert len(covering) == 1, outage
