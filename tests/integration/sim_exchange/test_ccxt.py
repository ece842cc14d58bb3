"""ccxt's binance class, unchanged, against the simulator's URLs."""

from __future__ import annotations

from decimal import Decimal

import ccxt
import pytest

from tests.integration.sim_exchange.signing import new_account

pytestmark = pytest.mark.integration


def _client(rest_url: str, key: str, secret: str) -> ccxt.binance:
    exchange = ccxt.binance(
        {
            "apiKey": key,
            "secret": secret,
            "enableRateLimit": False,
            "options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False, "fetchMargins": False},
        }
    )
    exchange.urls["api"] = {name: f"{rest_url}/api/v3" for name in exchange.urls["api"]}
    return exchange


@pytest.mark.timeout(90)
def test_ccxt_binance_trades_on_the_simulator(sim_exchange) -> None:
    # Arrange
    key, secret = new_account(sim_exchange)
    exchange = _client(sim_exchange.rest_url, key, secret)
    # Act / Assert: markets and book
    markets = exchange.load_markets()
    assert {"BTC/USDT", "ETH/USDT"} <= set(markets)
    assert markets["BTC/USDT"]["precision"]["price"] == 0.01
    assert markets["BTC/USDT"]["limits"]["cost"]["min"] == 5.0
    book = exchange.fetch_order_book("BTC/USDT", 20)
    assert book["bids"][0][0] < book["asks"][0][0] and isinstance(book["nonce"], int)
    best_bid = Decimal(str(book["bids"][0][0]))
    # resting limit order: open, visible, cancellable
    far_price = float(best_bid - 500)
    order = exchange.create_order("BTC/USDT", "limit", "buy", 0.002, far_price)
    assert order["status"] == "open" and order["clientOrderId"]
    assert exchange.fetch_order(order["id"], "BTC/USDT")["status"] == "open"
    assert [o["id"] for o in exchange.fetch_open_orders("BTC/USDT")] == [order["id"]]
    locked = exchange.fetch_balance()["USDT"]["used"]
    assert Decimal(str(locked)) == Decimal("0.002") * Decimal(str(far_price))
    cancelled = exchange.cancel_order(order["id"], "BTC/USDT")
    assert cancelled["status"] == "canceled"
    assert exchange.fetch_open_orders("BTC/USDT") == []
    assert exchange.fetch_order(order["id"], "BTC/USDT")["status"] == "canceled"
    # market order: filled, fee in the received asset, balances moved
    before = exchange.fetch_balance()
    market = exchange.create_order("BTC/USDT", "market", "buy", 0.01)
    assert market["status"] == "closed" and market["filled"] == 0.01
    assert market["fee"]["currency"] == "BTC"
    after = exchange.fetch_balance()
    assert after["BTC"]["free"] == pytest.approx(before["BTC"]["free"] + 0.01 - market["fee"]["cost"], abs=1e-9)
    assert after["USDT"]["free"] == pytest.approx(before["USDT"]["free"] - market["cost"], abs=1e-6)
    # crossing limit sell fills as taker
    sell = exchange.create_order("BTC/USDT", "limit", "sell", 0.005, float(best_bid - 1000))
    assert sell["status"] == "closed" and sell["filled"] == 0.005
    mine = exchange.fetch_my_trades("BTC/USDT")
    assert {t["order"] for t in mine} == {market["id"], sell["id"]}
    assert sum(t["amount"] for t in mine if t["order"] == market["id"]) == pytest.approx(0.01)
    venue_trades = {t["id"]: t for t in sim_exchange.trades("BTCUSDT")[-5000:]}
    for trade in mine:
        assert Decimal(venue_trades[int(trade["id"])]["price"]) == Decimal(str(trade["price"]))
