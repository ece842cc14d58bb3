"""ccxt's own websocket class (``ccxt.pro.binance``), unchanged, trading over the simulator's WebSocket API.

Only the URLs change: the REST base (markets) and ``urls.api.ws.ws-api.spot``. ccxt places and cancels
with ``order.place`` / ``order.cancel``, subscribes to the user-data stream with
``userDataStream.subscribe.signature`` (its spot path; no REST listenKey) and reads
``executionReport`` / ``outboundAccountPosition`` events from it. The venue's own order and trade
lists are the reference.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import ccxt.pro
import pytest

from tests.integration.sim_exchange.signing import new_account

pytestmark = pytest.mark.integration


def _client(rest_url: str, key: str, secret: str) -> ccxt.pro.binance:
    exchange = ccxt.pro.binance({
        "apiKey": key,
        "secret": secret,
        "enableRateLimit": False,
        "options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False, "fetchMargins": False},
    })
    api = exchange.urls["api"]
    for name, value in list(api.items()):
        if isinstance(value, str):
            api[name] = f"{rest_url}/api/v3"
    api["ws"]["ws-api"]["spot"] = rest_url.replace("http://", "ws://") + "/ws-api/v3"
    return exchange


async def _until(watch, predicate, timeout_s: float = 10.0):
    """Call ``watch()`` until its answer satisfies ``predicate``; return that answer."""
    async def loop():
        while True:
            got = await watch()
            if predicate(got):
                return got
    return await asyncio.wait_for(loop(), timeout_s)


async def _collect(watch, enough, timeout_s: float = 10.0) -> list:
    """Gather what ``watch()`` returns (only new updates each call) until ``enough(all so far)``."""
    gathered: list = []

    async def loop():
        while not enough(gathered):
            gathered.extend(await watch())
        return gathered
    return await asyncio.wait_for(loop(), timeout_s)


@pytest.mark.timeout(90)
def test_ccxt_pro_binance_trades_over_the_websocket_api(sim_exchange) -> None:
    # Arrange
    key, secret = new_account(sim_exchange)

    async def scenario() -> None:
        exchange = _client(sim_exchange.rest_url, key, secret)
        try:
            await exchange.load_markets()
            book = await exchange.fetch_order_book("BTC/USDT", 5)
            best_bid = Decimal(str(book["bids"][0][0]))
            # Act: the user-data stream first (subscribe.signature), then orders over order.place
            watching = asyncio.create_task(exchange.watch_orders("BTC/USDT"))
            await asyncio.sleep(0.3)
            resting = await exchange.create_order_ws("BTC/USDT", "limit", "buy", 0.002, float(best_bid - 500))
            # Assert: the ack, then the executionReport as ccxt reads it
            assert resting["status"] == "open" and resting["id"]
            seen = await asyncio.wait_for(watching, 10)
            assert any(o["id"] == resting["id"] and o["status"] == "open" for o in seen)
            # (each watch is waiting before its request: the event may come before the answer, as on Binance)
            cancel_seen = asyncio.create_task(_until(
                lambda: exchange.watch_orders("BTC/USDT"),
                lambda os: any(o["id"] == resting["id"] and o["status"] == "canceled" for o in os)))
            await asyncio.sleep(0.1)
            cancelled = await exchange.cancel_order_ws(resting["id"], "BTC/USDT")
            assert cancelled["status"] == "canceled"
            await cancel_seen
            # a market order: its fills pushed as trades, the balance pushed as outboundAccountPosition
            trades_task = asyncio.create_task(_collect(
                lambda: exchange.watch_my_trades("BTC/USDT"), lambda ts: sum(t["amount"] for t in ts) >= 0.01 - 1e-12))
            balance_task = asyncio.create_task(_until(
                exchange.watch_balance, lambda b: Decimal(str(b.get("BTC", {}).get("free") or 0)) > 0))
            await asyncio.sleep(0.2)
            market = await exchange.create_order_ws("BTC/USDT", "market", "buy", 0.01)
            assert market["status"] == "closed" and market["filled"] == pytest.approx(0.01)
            mine = await trades_task
            balance = await balance_task
            rest_balance = await exchange.fetch_balance()
            venue = {t["id"]: t for t in sim_exchange.trades("BTCUSDT")[-5000:]}
            for trade in mine:
                assert trade["order"] == market["id"]
                assert Decimal(venue[int(trade["id"])]["price"]) == Decimal(str(trade["price"]))
            assert sum(t["amount"] for t in mine) == pytest.approx(0.01)
            assert balance["BTC"]["free"] == pytest.approx(rest_balance["BTC"]["free"])
            assert balance["USDT"]["free"] == pytest.approx(rest_balance["USDT"]["free"])
        finally:
            await exchange.close()

    asyncio.run(scenario())
