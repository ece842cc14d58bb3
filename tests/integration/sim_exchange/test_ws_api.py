"""The simulator's WebSocket API over a real socket: framing, signatures, logon, user-data events, faults.

The references are Binance's documented frames and the simulator's own REST answers and trade list
(the two channels must agree: one implementation behind both).
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import aiohttp
import pytest

from tests.integration.sim_exchange.signing import WsApi, new_account, new_ed25519_account, signed

pytestmark = pytest.mark.integration

# executionReport fields Binance documents for a spot order without STP / conditional parameters
EXECUTION_REPORT_FIELDS = {"e", "E", "s", "c", "S", "o", "f", "q", "p", "P", "F", "g", "C", "x", "X", "r", "i", "l", "z", "L", "n", "N", "T", "t", "I", "w", "m", "M", "O", "Z", "Y", "Q", "W", "V"}


def _best(sim, symbol: str = "BTCUSDT") -> tuple[Decimal, Decimal]:
    book = sim.book(symbol)
    return Decimal(book["bids"][0][0]), Decimal(book["asks"][0][0])


@pytest.mark.timeout(60)
def test_orders_over_the_ws_api_answer_like_rest_and_push_every_change(sim_exchange) -> None:
    # Arrange
    key, secret = new_account(sim_exchange)
    bid, _ = _best(sim_exchange)

    async def scenario() -> None:
        async with aiohttp.ClientSession() as http:
            api = await WsApi.connect(sim_exchange, http)
            sub = await api.call("userDataStream.subscribe.signature", key=key, secret=secret)
            assert sub["status"] == 200 and sub["result"] == {"subscriptionId": 0}
            # Act: a resting order, its cancel, then a market order
            placed = await api.call("order.place", {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
                                                    "timeInForce": "GTC", "quantity": "0.002",
                                                    "price": str(bid - 300), "newClientOrderId": "ws-rest-1"},
                                    key=key, secret=secret)
            # Assert: Binance's framing; the result is what REST answers for the same order
            assert placed["status"] == 200 and placed["id"]
            kinds = {(r["rateLimitType"], r["interval"]) for r in placed["rateLimits"]}
            assert kinds == {("REQUEST_WEIGHT", "MINUTE"), ("ORDERS", "SECOND"), ("ORDERS", "DAY")}
            order_id = placed["result"]["orderId"]
            rest = signed(sim_exchange, "GET", "/api/v3/order", key, secret, symbol="BTCUSDT", orderId=order_id).json()
            status = await api.call("order.status", {"symbol": "BTCUSDT", "orderId": order_id}, key=key, secret=secret)
            assert status["result"] == rest
            events = await api.wait_events(lambda es: any(e.get("x") == "NEW" and e["i"] == order_id for e in es))
            new = next(e for e in events if e.get("x") == "NEW")
            assert set(new) == EXECUTION_REPORT_FIELDS
            assert (new["c"], new["X"], new["q"], new["z"], new["t"], new["C"]) == \
                ("ws-rest-1", "NEW", "0.00200000", "0.00000000", -1, "")
            await api.wait_events(lambda es: any(e["e"] == "outboundAccountPosition" for e in es))
            cancelled = await api.call("order.cancel", {"symbol": "BTCUSDT", "orderId": order_id,
                                                        "newClientOrderId": "ws-cancel-1"}, key=key, secret=secret)
            assert cancelled["result"]["status"] == "CANCELED" and cancelled["result"]["clientOrderId"] == "ws-cancel-1"
            events = await api.wait_events(lambda es: any(e.get("x") == "CANCELED" for e in es))
            cancel_report = next(e for e in events if e.get("x") == "CANCELED")
            assert (cancel_report["c"], cancel_report["C"], cancel_report["X"]) == ("ws-cancel-1", "ws-rest-1", "CANCELED")
            market = await api.call("order.place", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET",
                                                    "quantity": "0.05"}, key=key, secret=secret)
            market_id = market["result"]["orderId"]
            events = await api.wait_events(
                lambda es: any(e.get("x") == "TRADE" and e["i"] == market_id and e["X"] == "FILLED" for e in es))
            trades = [e for e in events if e.get("x") == "TRADE" and e["i"] == market_id]
            # every fill once, each the venue's trade; cumulative figures consistent
            venue = {t["id"]: t for t in sim_exchange.trades("BTCUSDT")[-5000:]}
            assert [e["t"] for e in trades] == [int(f["tradeId"]) for f in market["result"]["fills"]]
            for report in trades:
                assert Decimal(venue[report["t"]]["price"]) == Decimal(report["L"])
                assert Decimal(venue[report["t"]]["qty"]) == Decimal(report["l"])
            assert sum(Decimal(e["l"]) for e in trades) == Decimal(trades[-1]["z"]) == Decimal("0.05")
            assert [e["X"] for e in trades][-1] == "FILLED"
            my_trades = await api.call("myTrades", {"symbol": "BTCUSDT", "orderId": market_id}, key=key, secret=secret)
            assert [t["id"] for t in my_trades["result"]] == [e["t"] for e in trades]
            # the last balances pushed equal the account's
            account = await api.call("account.status", {"omitZeroBalances": True}, key=key, secret=secret)
            pushed = [e for e in api.events if e["event"]["e"] == "outboundAccountPosition"][-1]["event"]
            held = {b["asset"]: (b["free"], b["locked"]) for b in account["result"]["balances"]}
            assert {b["a"]: (b["f"], b["l"]) for b in pushed["B"]} == {a: held[a] for a in ("BTC", "USDT")}
            # a deposit is a balanceUpdate
            sim_exchange.control("POST", "/_sim/balance", {"api_key": key, "asset": "BTC", "delta": "1.5"})
            events = await api.wait_events(lambda es: any(e["e"] == "balanceUpdate" for e in es))
            update = next(e for e in events if e["e"] == "balanceUpdate")
            assert set(update) == {"e", "E", "a", "d", "T"} and (update["a"], update["d"]) == ("BTC", "1.50000000")
            unsub = await api.call("userDataStream.unsubscribe", {"subscriptionId": 0})
            assert unsub["status"] == 200
            await api.close()

    asyncio.run(scenario())


@pytest.mark.timeout(60)
def test_ed25519_logon_signs_the_session_and_hmac_keys_cannot_log_on(sim_exchange) -> None:
    # Arrange
    ed_key, private = new_ed25519_account(sim_exchange)
    hmac_key, secret = new_account(sim_exchange)
    bid, _ = _best(sim_exchange)

    async def scenario() -> None:
        async with aiohttp.ClientSession() as http:
            api = await WsApi.connect(sim_exchange, http)
            # Act / Assert: an Ed25519-signed request; a signature by another key is refused
            ok = await api.call("account.status", {}, key=ed_key, ed25519=private)
            assert ok["status"] == 200 and ok["result"]["accountType"] == "SPOT"
            _, other_private = new_ed25519_account(sim_exchange)
            bad = await api.call("account.status", {}, key=ed_key, ed25519=other_private)
            assert (bad["status"], bad["error"]["code"]) == (400, -1022)
            hmac_logon = await api.call("session.logon", key=hmac_key, secret=secret)
            assert hmac_logon["error"]["code"] == -4056
            logon = await api.call("session.logon", key=ed_key, ed25519=private)
            assert logon["result"]["apiKey"] == ed_key and logon["result"]["authorizedSince"]
            # after logon: no apiKey/signature, only the timestamp
            placed = await api.call("order.place", {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
                                                    "timeInForce": "GTC", "quantity": "0.002", "price": str(bid - 400),
                                                    "timestamp": _now_ms()})
            assert placed["status"] == 200
            sub = await api.call("userDataStream.subscribe")
            assert sub["result"] == {"subscriptionId": 0}
            gone = await api.call("openOrders.cancelAll", {"symbol": "BTCUSDT", "timestamp": _now_ms()})
            assert [o["orderId"] for o in gone["result"]] == [placed["result"]["orderId"]]
            await api.wait_events(lambda es: any(e.get("x") == "CANCELED" for e in es))
            await api.call("session.logout")
            after = await api.call("openOrders.status", {"timestamp": _now_ms()})
            assert after["error"]["code"] == -1102  # no session, no apiKey
            await api.close()

    asyncio.run(scenario())


def _now_ms() -> int:
    return int(time.time() * 1000)


@pytest.mark.timeout(60)
def test_ws_api_errors_are_rests_and_the_session_stays_up(sim_exchange) -> None:
    # Arrange
    key, secret = new_account(sim_exchange)

    async def scenario() -> None:
        async with aiohttp.ClientSession() as http:
            api = await WsApi.connect(sim_exchange, http)
            # Act: a filter failure over both channels, a missing parameter, an unknown method, bad JSON
            tiny = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                    "quantity": "0.00001", "price": "100.00"}
            ws_answer = await api.call("order.place", tiny, key=key, secret=secret)
            rest_answer = signed(sim_exchange, "POST", "/api/v3/order", key, secret, **tiny)
            missing = await api.call("order.place", {"symbol": "BTCUSDT", "type": "MARKET", "quantity": "0.01"},
                                     key=key, secret=secret)
            unknown = await api.call("order.teleport", {})
            await api.send_raw("{not json")
            await asyncio.sleep(0.2)
            stale = await api.call("account.status", {}, key=key, secret=secret, timestamp=_now_ms() - 120_000)
            ping = await api.call("ping")
            # Assert
            assert (ws_answer["status"], ws_answer["error"]) == (rest_answer.status_code, rest_answer.json())
            assert missing["error"]["code"] == -1102
            assert unknown["error"]["code"] == -1020
            assert api.answers[None]["error"]["code"] == -1135 and api.answers[None]["status"] == 400
            assert stale["error"]["code"] == -1021
            assert ping == {"id": ping["id"], "status": 200, "result": {}, "rateLimits": ping["rateLimits"]}
            await api.close()

    asyncio.run(scenario())


@pytest.mark.timeout(60)
def test_rest_faults_act_on_the_ws_api(sim_exchange) -> None:
    # Arrange
    key, secret = new_account(sim_exchange)
    bid, _ = _best(sim_exchange)
    order = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.002"}

    def open_ids() -> set[str]:
        return {o["clientOrderId"] for o in
                signed(sim_exchange, "GET", "/api/v3/openOrders", key, secret, symbol="BTCUSDT").json()}

    async def scenario() -> None:
        async with aiohttp.ClientSession() as http:
            try:
                # Act / Assert: answer lost -> executed, the connection dropped, no answer
                sim_exchange.set_faults({"answer_lost": {"path": "/api/v3/order", "method": "POST"}})
                api = await WsApi.connect(sim_exchange, http)
                with pytest.raises(ConnectionError):
                    await api.call("order.place", {**order, "price": str(bid - 600), "newClientOrderId": "lost-1"},
                                   key=key, secret=secret, timeout_s=5)
                assert "lost-1" in open_ids()
                # 503 after execution: the venue placed it although the answer says "unknown"
                sim_exchange.set_faults({"rest_error": {"path": "/api/v3/order", "method": "POST"}})
                api = await WsApi.connect(sim_exchange, http)
                unknown = await api.call("order.place", {**order, "price": str(bid - 601),
                                                         "newClientOrderId": "unknown-1"}, key=key, secret=secret)
                assert (unknown["status"], unknown["error"]["code"]) == (503, -1007)
                assert "unknown-1" in open_ids()
                # late execution past the recvWindow: dropped by the venue (-1021), never placed; the
                # session keeps answering other requests meanwhile (the held one blocks nothing)
                sim_exchange.set_faults({"late_execution": {"delay_s": 1.5}})
                held = asyncio.create_task(api.call("order.place", {**order, "price": str(bid - 602),
                                                                    "newClientOrderId": "late-1", "recvWindow": 500},
                                                    key=key, secret=secret))
                await asyncio.sleep(0.2)
                assert (await api.call("ping", timeout_s=1))["status"] == 200
                late = await held
                assert late["error"]["code"] == -1021 and "late-1" not in open_ids()
                await api.close()
            finally:
                sim_exchange.clear_faults()
                signed(sim_exchange, "DELETE", "/api/v3/openOrders", key, secret, symbol="BTCUSDT")

    asyncio.run(scenario())
