"""Market data over real sockets: REST fields, websocket payloads, book rebuild from snapshot + diffs."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest
import requests
import websocket

pytestmark = pytest.mark.integration


def _rebuild(sim, stream: str, symbol: str, seconds: float) -> tuple[dict[str, str], dict[str, str], int, int]:
    """Binance's documented procedure: buffer diffs, fetch a snapshot, drop u <= lastUpdateId, apply."""
    ws = websocket.create_connection(f"{sim.ws_url}/ws/{stream}", timeout=10)
    try:
        buffered = [json.loads(ws.recv())]
        snapshot = requests.get(f"{sim.rest_url}/api/v3/depth", params={"symbol": symbol, "limit": 5000}, timeout=5).json()
        bids = {p: q for p, q in snapshot["bids"]}
        asks = {p: q for p, q in snapshot["asks"]}
        last = snapshot["lastUpdateId"]
        applied = 0
        first = True
        deadline = time.monotonic() + seconds
        while True:
            event = buffered.pop(0) if buffered else json.loads(ws.recv())
            assert event["e"] == "depthUpdate" and event["s"] == symbol
            if event["u"] <= last:
                continue
            if first:
                assert event["U"] <= last + 1 <= event["u"], (event["U"], event["u"], last)
                first = False
            else:
                assert event["U"] == last + 1, "gap in the diff stream"
            for levels, side in ((bids, event["b"]), (asks, event["a"])):
                for price, qty in side:
                    if Decimal(qty) == 0:
                        levels.pop(price, None)
                    else:
                        levels[price] = qty
            last = event["u"]
            applied += 1
            if time.monotonic() > deadline:
                requests.post(f"{sim.rest_url}/_sim/flow", json={"paused": True}, timeout=5)
                deadline = float("inf")
                final = sim.book(symbol)["lastUpdateId"]
            if deadline == float("inf") and last >= final:
                return bids, asks, last, applied
    finally:
        ws.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("stream_kind", ["depth@100ms", "depth"])
def test_snapshot_plus_diffs_rebuild_the_exchange_book(sim_exchange_factory, stream_kind: str) -> None:
    # Arrange
    sim = sim_exchange_factory(events_per_s=2000)
    # Act
    bids, asks, last, applied = _rebuild(sim, f"btcusdt@{stream_kind}", "BTCUSDT", seconds=2.5)
    # Assert
    book = sim.book("BTCUSDT")
    assert applied >= 2
    assert last == book["lastUpdateId"]
    assert bids == {p: q for p, q in book["bids"]}
    assert asks == {p: q for p, q in book["asks"]}
    best_bid, best_ask = max(Decimal(p) for p in bids), min(Decimal(p) for p in asks)
    assert best_bid < best_ask


@pytest.mark.timeout(60)
def test_rest_market_data_fields(sim_exchange) -> None:
    base = sim_exchange.rest_url
    assert requests.get(f"{base}/api/v3/ping", timeout=5).json() == {}
    server_time = requests.get(f"{base}/api/v3/time", timeout=5).json()["serverTime"]
    assert abs(server_time - time.time() * 1000) < 5000
    info = requests.get(f"{base}/api/v3/exchangeInfo", timeout=5).json()
    assert {s["symbol"] for s in info["symbols"]} == {"BTCUSDT", "ETHUSDT"}
    btc = next(s for s in info["symbols"] if s["symbol"] == "BTCUSDT")
    filters = {f["filterType"]: f for f in btc["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000"
    assert filters["LOT_SIZE"]["stepSize"] == "0.00001000"
    assert Decimal(filters["NOTIONAL"]["minNotional"]) == 5
    assert {r["rateLimitType"] for r in info["rateLimits"]} >= {"REQUEST_WEIGHT", "ORDERS"}
    response = requests.get(f"{base}/api/v3/depth", params={"symbol": "BTCUSDT", "limit": 10}, timeout=5)
    depth = response.json()
    assert int(response.headers["X-MBX-USED-WEIGHT-1M"]) >= 5
    assert len(depth["bids"]) == 10 and len(depth["asks"]) == 10
    assert Decimal(depth["bids"][0][0]) < Decimal(depth["asks"][0][0])
    assert [Decimal(p) for p, _ in depth["bids"]] == sorted((Decimal(p) for p, _ in depth["bids"]), reverse=True)
    time.sleep(0.5)
    trades = requests.get(f"{base}/api/v3/trades", params={"symbol": "BTCUSDT", "limit": 50}, timeout=5).json()
    assert trades and set(trades[0]) == {"id", "price", "qty", "quoteQty", "time", "isBuyerMaker", "isBestMatch"}
    assert [t["id"] for t in trades] == list(range(trades[0]["id"], trades[0]["id"] + len(trades)))
    for t in trades:
        assert Decimal(t["quoteQty"]) == Decimal(t["price"]) * Decimal(t["qty"])
    tickers = requests.get(f"{base}/api/v3/ticker/bookTicker", timeout=5).json()
    assert {t["symbol"] for t in tickers} == {"BTCUSDT", "ETHUSDT"}
    historical = requests.get(
        f"{base}/api/v3/historicalTrades", params={"symbol": "BTCUSDT", "fromId": 1, "limit": 5}, timeout=5
    ).json()
    assert [t["id"] for t in historical] == [1, 2, 3, 4, 5]
    all_trades = sim_exchange.trades("BTCUSDT")
    assert [t["id"] for t in all_trades] == list(range(1, len(all_trades) + 1))


@pytest.mark.timeout(60)
def test_websocket_payloads_and_live_subscriptions(sim_exchange) -> None:
    ws = websocket.create_connection(f"{sim_exchange.ws_url}/stream?streams=btcusdt@trade", timeout=10)
    try:
        ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@bookTicker", "ethusdt@depth@100ms"], "id": 7}))
        seen: dict[str, dict] = {}
        replies = []
        deadline = time.monotonic() + 10
        while len(seen) < 3 or not replies:
            assert time.monotonic() < deadline, f"only saw {list(seen)} {replies}"
            message = json.loads(ws.recv())
            if "stream" in message:
                seen.setdefault(message["stream"], message["data"])
            else:
                replies.append(message)
        assert replies[0] == {"result": None, "id": 7}
        assert set(seen["btcusdt@trade"]) == {"e", "E", "s", "t", "p", "q", "T", "m", "M"}
        assert set(seen["btcusdt@bookTicker"]) == {"u", "s", "b", "B", "a", "A"}
        assert set(seen["ethusdt@depth@100ms"]) == {"e", "E", "s", "U", "u", "b", "a"}
        ws.send(json.dumps({"method": "UNSUBSCRIBE", "params": ["btcusdt@trade"], "id": 8}))
        ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 9}))
        listed = None
        while listed is None:
            message = json.loads(ws.recv())
            if message.get("id") == 9:
                listed = message["result"]
        assert listed == ["btcusdt@bookTicker", "ethusdt@depth@100ms"]
        ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["nosuch@trade"], "id": 10}))
        error = None
        while error is None:
            message = json.loads(ws.recv())
            if message.get("id") == 10:
                error = message
        assert error["error"]["code"] == 2
    finally:
        ws.close()
