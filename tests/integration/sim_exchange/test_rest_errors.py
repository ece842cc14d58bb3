"""Bad requests get Binance's error JSON and status, never a stack trace; the simulator keeps serving."""

from __future__ import annotations

import time
import uuid
from decimal import Decimal

import pytest
import requests

from tests.integration.sim_exchange.signing import new_account, signed

pytestmark = pytest.mark.integration


def _far_bid(sim) -> str:
    bid = Decimal(requests.get(f"{sim.rest_url}/api/v3/ticker/bookTicker", params={"symbol": "BTCUSDT"}, timeout=5).json()["bidPrice"])
    return str(bid - 1000)


def _error(response: requests.Response, status: int, code: int, msg: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    if msg is not None:
        assert body["msg"] == msg
    assert "Traceback" not in response.text


@pytest.mark.timeout(60)
def test_signed_endpoint_errors(sim_exchange) -> None:
    key, secret = new_account(sim_exchange)
    order = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.001"}
    price = _far_bid(sim_exchange)
    # bad signature
    _error(signed(sim_exchange, "GET", "/api/v3/account", key, "wrong-secret"), 400, -1022,
           "Signature for this request is not valid.")
    # stale and future timestamps
    stale = int(time.time() * 1000) - 10_000
    _error(signed(sim_exchange, "GET", "/api/v3/account", key, secret, timestamp=stale), 400, -1021,
           "Timestamp for this request is outside of the recvWindow.")
    assert signed(sim_exchange, "GET", "/api/v3/account", key, secret, timestamp=stale, recvWindow=60000).status_code == 200
    future = int(time.time() * 1000) + 5_000
    _error(signed(sim_exchange, "GET", "/api/v3/account", key, secret, timestamp=future), 400, -1021)
    # unknown / missing API key
    _error(signed(sim_exchange, "GET", "/api/v3/account", "nobody", secret), 401, -2015)
    _error(requests.get(f"{sim_exchange.rest_url}/api/v3/account", timeout=5), 401, -2014)
    # filters
    _error(signed(sim_exchange, "POST", "/api/v3/order", key, secret, **{**order, "price": price + "1"}), 400, -1013,
           "Filter failure: PRICE_FILTER")
    _error(signed(sim_exchange, "POST", "/api/v3/order", key, secret, **{**order, "price": price, "quantity": "0.0000111"}),
           400, -1013, "Filter failure: LOT_SIZE")
    _error(signed(sim_exchange, "POST", "/api/v3/order", key, secret, **{**order, "price": "1.00"}), 400, -1013,
           "Filter failure: NOTIONAL")
    # bad parameters
    _error(signed(sim_exchange, "POST", "/api/v3/order", key, secret, **{**order, "symbol": "NOPE", "price": price}), 400, -1121,
           "Invalid symbol.")
    _error(signed(sim_exchange, "POST", "/api/v3/order", key, secret, **{**order, "quantity": "abc", "price": price}), 400, -1100)
    _error(signed(sim_exchange, "POST", "/api/v3/order", key, secret, **{**order, "side": None, "price": price}), 400, -1102)
    # duplicate client order id while the first order is open
    client_id = "dup-" + uuid.uuid4().hex[:8]
    first = signed(sim_exchange, "POST", "/api/v3/order", key, secret, **order, price=price, newClientOrderId=client_id)
    assert first.status_code == 200 and first.json()["status"] == "NEW"
    _error(signed(sim_exchange, "POST", "/api/v3/order", key, secret, **order, price=price, newClientOrderId=client_id),
           400, -2010, "Duplicate order sent.")
    by_client = signed(sim_exchange, "GET", "/api/v3/order", key, secret, symbol="BTCUSDT", origClientOrderId=client_id)
    assert by_client.json()["orderId"] == first.json()["orderId"]
    # LIMIT_MAKER that would cross
    ask = requests.get(f"{sim_exchange.rest_url}/api/v3/ticker/bookTicker", params={"symbol": "BTCUSDT"}, timeout=5).json()["askPrice"]
    maker = {**order, "type": "LIMIT_MAKER", "timeInForce": None, "price": str(Decimal(ask) + 100)}
    _error(signed(sim_exchange, "POST", "/api/v3/order", key, secret, **maker), 400, -2010,
           "Order would immediately match and take.")
    # unknown orders
    _error(signed(sim_exchange, "DELETE", "/api/v3/order", key, secret, symbol="BTCUSDT", orderId=10**12), 400, -2011,
           "Unknown order sent.")
    _error(signed(sim_exchange, "GET", "/api/v3/order", key, secret, symbol="BTCUSDT", orderId=10**12), 400, -2013,
           "Order does not exist.")
    # insufficient balance
    poor_key, poor_secret = new_account(sim_exchange, balances={"USDT": "10"})
    _error(signed(sim_exchange, "POST", "/api/v3/order", poor_key, poor_secret, **order, price=price), 400, -2010,
           "Account has insufficient balance for requested action.")
    # the server keeps serving
    assert requests.get(f"{sim_exchange.rest_url}/api/v3/ping", timeout=5).status_code == 200


@pytest.mark.timeout(60)
def test_time_in_force_and_market_variants(sim_exchange) -> None:
    key, secret = new_account(sim_exchange)
    base = {"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.001"}
    ioc = signed(sim_exchange, "POST", "/api/v3/order", key, secret, **base, type="LIMIT", timeInForce="IOC",
                 price=_far_bid(sim_exchange)).json()
    assert (ioc["status"], ioc["executedQty"], ioc["fills"]) == ("EXPIRED", "0.00000000", [])
    ask = Decimal(requests.get(f"{sim_exchange.rest_url}/api/v3/ticker/bookTicker", params={"symbol": "BTCUSDT"},
                               timeout=5).json()["askPrice"])
    fok_miss = signed(sim_exchange, "POST", "/api/v3/order", key, secret, symbol="BTCUSDT", side="SELL",
                      quantity="0.001", type="LIMIT", timeInForce="FOK", price=str(ask + 1000)).json()
    assert fok_miss["status"] == "EXPIRED" and fok_miss["executedQty"] == "0.00000000"
    fok_hit = signed(sim_exchange, "POST", "/api/v3/order", key, secret, symbol="BTCUSDT", side="BUY",
                     quantity="0.001", type="LIMIT", timeInForce="FOK", price=str(ask + 1000)).json()
    assert fok_hit["status"] == "FILLED" and fok_hit["executedQty"] == "0.00100000"
    quote = signed(sim_exchange, "POST", "/api/v3/order", key, secret, symbol="BTCUSDT", side="BUY", type="MARKET",
                   quoteOrderQty="100").json()
    assert quote["status"] == "FILLED"
    assert Decimal(99) < Decimal(quote["cummulativeQuoteQty"]) <= Decimal(100)
    assert Decimal(quote["origQty"]) == Decimal(quote["executedQty"]) == sum(Decimal(f["qty"]) for f in quote["fills"])
    ack = signed(sim_exchange, "POST", "/api/v3/order", key, secret, symbol="BTCUSDT", side="SELL", type="MARKET",
                 quantity="0.001", newOrderRespType="ACK").json()
    assert set(ack) == {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}
    mine = signed(sim_exchange, "GET", "/api/v3/myTrades", key, secret, symbol="BTCUSDT").json()
    assert {t["orderId"] for t in mine} == {fok_hit["orderId"], quote["orderId"], ack["orderId"]}


@pytest.mark.timeout(60)
def test_garbage_requests_never_leak_a_stack_trace(sim_exchange) -> None:
    base = sim_exchange.rest_url
    cases = [
        requests.get(f"{base}/api/v3/depth", params={"symbol": "BTCUSDT", "limit": "x"}, timeout=5),
        requests.get(f"{base}/api/v3/depth", params={"symbol": "BTCUSDT", "limit": "0"}, timeout=5),
        requests.get(f"{base}/api/v3/depth", timeout=5),
        requests.get(f"{base}/api/v3/depth?symbol=BTCUSDT&symbol=ETHUSDT", timeout=5),
        requests.post(f"{base}/api/v3/order", data=b"\xff\xfe\x00garbage", timeout=5),
        requests.get(f"{base}/api/v3/nosuchendpoint", timeout=5),
        requests.put(f"{base}/api/v3/order", timeout=5),
        requests.get(f"{base}/api/v3/exchangeInfo", params={"symbols": "[not json"}, timeout=5),
    ]
    for response in cases:
        assert 400 <= response.status_code < 500, (response.request.url, response.status_code, response.text)
        body = response.json()
        assert isinstance(body["code"], int) and body["code"] < 0 and body["msg"]
        assert "Traceback" not in response.text
    assert requests.get(f"{base}/api/v3/ping", timeout=5).json() == {}


@pytest.mark.timeout(60)
def test_request_weight_limit_answers_429_with_retry_after(sim_exchange_factory) -> None:
    sim = sim_exchange_factory(weight_limit_1m=60, events_per_s=50)
    statuses = []
    for _ in range(20):
        response = requests.get(f"{sim.rest_url}/api/v3/depth", params={"symbol": "BTCUSDT"}, timeout=5)
        statuses.append(response.status_code)
        if response.status_code == 429:
            break
    assert statuses[:10] == [200] * 10  # 5 weight each; the start-up pings used a little
    assert statuses[-1] == 429
    assert response.json()["code"] == -1003
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert int(response.headers["X-MBX-USED-WEIGHT-1M"]) > 60


@pytest.mark.timeout(60)
def test_cancel_all_open_orders_releases_locked_balance(sim_exchange) -> None:
    key, secret = new_account(sim_exchange, balances={"USDT": "10000", "BTC": "1"})
    price = _far_bid(sim_exchange)
    placed = [
        signed(sim_exchange, "POST", "/api/v3/order", key, secret, symbol="BTCUSDT", side="BUY", type="LIMIT",
               timeInForce="GTC", quantity="0.01", price=price)
        for _ in range(2)
    ]
    assert all(r.status_code == 200 for r in placed)
    assert placed[1].headers["X-MBX-ORDER-COUNT-10S"] == "2"
    usdt = next(b for b in signed(sim_exchange, "GET", "/api/v3/account", key, secret).json()["balances"] if b["asset"] == "USDT")
    assert Decimal(usdt["locked"]) == 2 * Decimal("0.01") * Decimal(price)
    cancelled = signed(sim_exchange, "DELETE", "/api/v3/openOrders", key, secret, symbol="BTCUSDT").json()
    assert sorted(c["orderId"] for c in cancelled) == sorted(r.json()["orderId"] for r in placed)
    assert {c["status"] for c in cancelled} == {"CANCELED"}
    usdt = next(b for b in signed(sim_exchange, "GET", "/api/v3/account", key, secret).json()["balances"] if b["asset"] == "USDT")
    assert (Decimal(usdt["free"]), Decimal(usdt["locked"])) == (Decimal(10000), Decimal(0))
    assert signed(sim_exchange, "GET", "/api/v3/openOrders", key, secret, symbol="BTCUSDT").json() == []
    _error(signed(sim_exchange, "DELETE", "/api/v3/openOrders", key, secret, symbol="BTCUSDT"), 400, -2011)


@pytest.mark.timeout(60)
def test_fees_follow_the_account_maker_and_taker_rates(sim_exchange) -> None:
    key, secret = new_account(sim_exchange, maker_fee="0", taker_fee="0.002")
    buy = signed(sim_exchange, "POST", "/api/v3/order", key, secret, symbol="BTCUSDT", side="BUY", type="MARKET",
                 quantity="0.01").json()
    assert buy["status"] == "FILLED"
    for fill in buy["fills"]:
        assert fill["commissionAsset"] == "BTC"
        assert Decimal(fill["commission"]) == Decimal(fill["qty"]) * Decimal("0.002")
    sell = signed(sim_exchange, "POST", "/api/v3/order", key, secret, symbol="BTCUSDT", side="SELL", type="MARKET",
                  quantity="0.005").json()
    for fill in sell["fills"]:
        assert fill["commissionAsset"] == "USDT"
        quote = Decimal(fill["qty"]) * Decimal(fill["price"])
        assert Decimal(fill["commission"]) == (quote * Decimal("0.002")).quantize(Decimal("0.00000001"), rounding="ROUND_DOWN")
    account = signed(sim_exchange, "GET", "/api/v3/account", key, secret).json()
    assert account["commissionRates"]["maker"] == "0.00000000" and account["commissionRates"]["taker"] == "0.00200000"
    assert (account["makerCommission"], account["takerCommission"]) == (0, 20)
