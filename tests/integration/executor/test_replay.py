"""`tickpipe replay`: reprocessing signals from an offset sends no order twice."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from executor.ids import MAX_ATTEMPT, client_order_id
from executor.venue import BinanceVenue, NotFound
from infra.broker import free_port
from infra.settings import KafkaSettings, environ_without_settings
from schemas.topics import Topic
from tests.integration.executor.harness import (
    MarketBridge,
    executor_settings,
    new_account,
    produce_signals,
    records,
    running_engine,
    signal,
)
from tests.polling import wait_for

pytestmark = [pytest.mark.integration]


@pytest.mark.timeout(120)
def test_replay_from_offset_zero_adopts_every_order_and_sends_none_again(
    kafka_settings: KafkaSettings, executor_sim_url: str, market_bridge: MarketBridge, tmp_path: Path
) -> None:
    # Arrange: a live run acts on a few signals
    key, secret = new_account(executor_sim_url)
    settings = executor_settings(executor_sim_url, key, secret)
    venue = BinanceVenue(executor_sim_url, key, secret, 3000)
    with running_engine(settings, kafka_settings) as engine:
        wait_for(lambda: engine.recover_below, 20, "signals partitions assigned")
        signals = [signal("BTCUSDT", "buy", "0.001", urgency=1.0, expires_in_s=120) for _ in range(5)]
        produce_signals(kafka_settings, signals)
        wait_for(lambda: engine.metrics.signals.labels("done")._value.get() >= len(signals), 30, "signals done")
    trades_before = venue.my_trades("BTCUSDT")
    balances_before = venue.balances()
    ids = {s["signal_id"] for s in signals}
    live_orders = {e["client_order_id"] for e in records(kafka_settings, Topic.ORDERS, "OrderEvent") if e["signal_id"] in ids}

    # Act: replay the whole topic through the CLI
    env = environ_without_settings() | {
        "TICKPIPE_KAFKA__BOOTSTRAP": kafka_settings.bootstrap,
        "TICKPIPE_EXECUTOR__GROUP_ID": settings.group_id,
        "TICKPIPE_EXECUTOR__CONTROL_TOPIC": settings.control_topic,
        "TICKPIPE_EXECUTOR__API_KEY": key,
        "TICKPIPE_EXECUTOR__ACCOUNT": key,
        "TICKPIPE_EXECUTOR__API_SECRET": secret,
        "TICKPIPE_EXECUTOR__METRICS_PORT": str(free_port()),
        "TICKPIPE_EXECUTOR__SYMBOLS": "BTCUSDT,ETHUSDT",
    }  # default max signal age: other tests' old signals in the topic are stale, not acted on
    done = subprocess.run(
        [str(Path(sys.executable).parent / "tickpipe"), "replay", "--topic", "signals", "--from-offset", "0",
         "--rest-url", executor_sim_url],
        env=env, capture_output=True, timeout=90, check=False,
    )

    # Assert
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert venue.my_trades("BTCUSDT") == trades_before
    assert venue.balances() == balances_before
    events = [e for e in records(kafka_settings, Topic.ORDERS, "OrderEvent") if e["signal_id"] in ids]
    assert {e["client_order_id"] for e in events} == live_orders  # the replay only adopted the live run's orders
    for s in signals:
        first = client_order_id(s["signal_id"], 0, 0)
        statuses = [e["status"] for e in events if e["client_order_id"] == first]
        assert statuses.count("pending_new") == 2, statuses  # live run + replay's adoption, one venue order
        # an IOC may miss a moving book, so the live run may have needed more than one; together they
        # traded, and the attempt after the live run's last never reached the venue
        attempts = [a for a in range(MAX_ATTEMPT + 1) if client_order_id(s["signal_id"], 0, a) in live_orders]
        assert attempts == list(range(len(attempts))), attempts
        executed = [Decimal(venue.query("BTCUSDT", client_order_id(s["signal_id"], 0, a))["executedQty"]) for a in attempts]
        assert sum(executed) > 0, executed
        with pytest.raises(NotFound):
            venue.query("BTCUSDT", client_order_id(s["signal_id"], 0, len(attempts)))
