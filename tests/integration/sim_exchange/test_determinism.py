"""Same seed + same client actions => same event stream (timestamps aside)."""

from __future__ import annotations

import json
import time

import pytest
import websocket

from tests.integration.sim_exchange.signing import signed

pytestmark = pytest.mark.integration

KEY, SECRET = "tickpipe-sim-key", "tickpipe-sim-secret"


def _strip_times(trades: list[dict]) -> list[dict]:
    return [{k: v for k, v in t.items() if k != "time"} for t in trades]


def _scenario(sim) -> tuple[list[dict], dict, list[dict], list[dict]]:
    """Step the paused flow, trade in between, and record the trade stream as a client sees it."""
    ws = websocket.create_connection(f"{sim.ws_url}/ws/btcusdt@trade", timeout=10)
    try:
        sim.step(1500)
        bid = sim.book("BTCUSDT")["bids"][0][0]
        orders = [
            signed(sim, "POST", "/api/v3/order", KEY, SECRET, symbol="BTCUSDT", side="BUY", type="LIMIT",
                   timeInForce="GTC", quantity="0.02", price=bid, newClientOrderId="det-1").json(),
            signed(sim, "POST", "/api/v3/order", KEY, SECRET, symbol="BTCUSDT", side="SELL", type="MARKET",
                   quantity="0.05", newClientOrderId="det-2").json(),
        ]
        sim.step(1500)
        trades = _strip_times(sim.trades("BTCUSDT"))
        frames = []
        deadline = time.monotonic() + 10
        while len(frames) < len(trades) and time.monotonic() < deadline:
            frame = json.loads(ws.recv())
            frames.append({k: v for k, v in frame.items() if k not in ("E", "T")})
        for order in orders:
            order.pop("transactTime", None)
            order.pop("workingTime", None)
        return trades, sim.book("BTCUSDT"), frames, orders
    finally:
        ws.close()


@pytest.mark.timeout(90)
def test_same_seed_and_actions_give_the_same_stream_and_other_seed_differs(sim_exchange_factory) -> None:
    # Arrange: paused flows, advanced only by explicit steps
    first = sim_exchange_factory(seed=7, events_per_s=0)
    second = sim_exchange_factory(seed=7, events_per_s=0)
    other = sim_exchange_factory(seed=8, events_per_s=0)
    # Act
    a, b, c = _scenario(first), _scenario(second), _scenario(other)
    # Assert
    trades_a, book_a, frames_a, orders_a = a
    assert len(trades_a) > 100
    assert len(frames_a) == len(trades_a)
    assert a == b
    assert trades_a != c[0]
    assert book_a != c[1]
    assert orders_a[1]["status"] == "FILLED"


@pytest.mark.timeout(60)
def test_free_running_flows_with_the_same_seed_agree_on_every_trade(sim_exchange_factory) -> None:
    first = sim_exchange_factory(seed=21, events_per_s=3000)
    second = sim_exchange_factory(seed=21, events_per_s=3000)
    time.sleep(2.0)
    for symbol in ("BTCUSDT", "ETHUSDT"):
        a, b = _strip_times(first.trades(symbol)), _strip_times(second.trades(symbol))
        common = min(len(a), len(b))
        assert common > 100
        assert a[:common] == b[:common]
