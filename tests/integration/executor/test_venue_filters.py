"""Orders the venue's filters would refuse are denied at once, never sent, never left waiting."""

from __future__ import annotations

from decimal import Decimal

import pytest

from executor.ids import client_order_id
from executor.venue import BinanceVenue, NotFound
from infra.settings import KafkaSettings
from tests.integration.executor.harness import (
    MarketBridge,
    executor_settings,
    new_account,
    order_events,
    produce_signals,
    running_engine,
    signal,
)
from tests.polling import wait_for

pytestmark = [pytest.mark.integration]


@pytest.mark.timeout(90)
def test_eth_signal_below_min_notional_is_denied_at_once_while_a_valid_one_trades(
    kafka_settings: KafkaSettings, executor_sim_url: str, market_bridge: MarketBridge
) -> None:
    # Arrange: ETHUSDT trades near 3,000 with a 5 USDT NOTIONAL minimum, so 0.001 ETH (~3 USDT) is refused
    key, secret = new_account(executor_sim_url)
    settings = executor_settings(executor_sim_url, key, secret)
    venue = BinanceVenue(executor_sim_url, key, secret, 3000)
    small = [signal("ETHUSDT", "buy", "0.001", urgency=u, expires_in_s=120) for u in (0.0, 1.0)]
    valid = signal("ETHUSDT", "buy", "0.01", urgency=1.0, expires_in_s=120)
    ids = {s["signal_id"] for s in small} | {valid["signal_id"]}

    # Act
    with running_engine(settings, kafka_settings) as engine:
        wait_for(lambda: engine.recover_below, 20, "signals partitions assigned")
        wait_for(lambda: engine.market.snapshot("binance", "ETHUSDT") is not None, 20, "ETHUSDT market data")
        produce_signals(kafka_settings, [*small, valid])
        # the signals expire in 120 s: a run still waiting on them would not be done within this wait
        wait_for(lambda: engine.metrics.signals.labels("done")._value.get() >= len(ids), 30, "every signal done")
        denied_count = engine.metrics.denied.labels("notional")._value.get()

    # Assert
    events = order_events(kafka_settings, ids, by="signal_id")
    for s in small:
        assert [e["status"] for e in events[s["signal_id"]]] == ["denied"], events[s["signal_id"]]
        denial = events[s["signal_id"]][0]
        assert "below the min notional 5 (NOTIONAL)" in denial["reason"] and Decimal(denial["qty"]) == Decimal("0.001")
        assert denial["ts_event"] < s["expires_at"] - 90_000_000_000  # decided at once, not at expiry
        with pytest.raises(NotFound):
            venue.query("ETHUSDT", client_order_id(s["signal_id"], 0, 0))
    assert denied_count == len(small)
    traded = events[valid["signal_id"]]
    assert traded[0]["status"] == "pending_new" and "denied" not in {e["status"] for e in traded}
    assert traded[-1]["status"] in {"filled", "expired", "canceled"}
    venue_order = venue.query("ETHUSDT", client_order_id(valid["signal_id"], 0, 0))
    assert Decimal(0) < Decimal(venue_order["origQty"]) <= Decimal("0.01")
    assert venue.open_orders() == []
