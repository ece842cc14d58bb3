"""Faults on demand over real sockets: drop, stall, gap, duplicate, reorder, serverShutdown,
unknown-state REST errors and timeouts, 429 storms, liquidity withdrawal, ping/pong and limits."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal

import aiohttp
import pytest
import requests
import websocket

from sim_exchange.process import SimExchangeProcess, start_sim_exchange
from tests.integration.sim_exchange.signing import new_account, signed

pytestmark = [pytest.mark.integration, pytest.mark.faults]


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimExchangeProcess]:
    process = start_sim_exchange(
        log_path=tmp_path_factory.mktemp("sim_faults") / "sim.log", seed=5, events_per_s=1500
    )
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(autouse=True)
def _clean_faults(sim: SimExchangeProcess) -> Iterator[None]:
    yield
    sim.clear_faults()


def _connect(sim: SimExchangeProcess, path: str) -> websocket.WebSocket:
    ws = websocket.create_connection(f"{sim.ws_url}{path}", timeout=5)
    json.loads(ws.recv())  # stream is live
    return ws


def _ids(sim: SimExchangeProcess, before: set[int]) -> list[int]:
    return [c["id"] for c in sim.connections() if c["id"] not in before]


@pytest.mark.timeout(60)
def test_drop_one_random_connection_keeps_the_other(sim) -> None:
    before = {c["id"] for c in sim.connections()}
    first = _connect(sim, "/ws/btcusdt@trade")
    second = _connect(sim, "/ws/btcusdt@trade")
    mine = _ids(sim, before)
    assert len(mine) == 2
    result = sim.set_faults({"drop": {"connections": mine[:1]}})
    assert result["applied"][0]["connections"] == mine[:1]
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError, OSError)):
        for _ in range(10_000):
            first.recv()
    assert json.loads(second.recv())["e"] == "trade"
    second.close()
    random_pick = sim.set_faults({"drop": {"connections": "random"}})
    assert len(random_pick["applied"][0]["connections"]) <= 1


@pytest.mark.timeout(60)
def test_stall_keeps_the_socket_open_but_sends_nothing(sim) -> None:
    before = {c["id"] for c in sim.connections()}
    stalled = _connect(sim, "/ws/btcusdt@trade")
    healthy = _connect(sim, "/ws/btcusdt@trade")
    target = _ids(sim, before)[0]
    sim.set_faults({"stall": {"connections": [target], "seconds": 2.0}})
    time.sleep(0.1)
    while True:  # drain what was in flight before the stall
        stalled.settimeout(0.3)
        try:
            stalled.recv()
        except websocket.WebSocketTimeoutException:
            break
    stalled.settimeout(1.0)
    with pytest.raises(websocket.WebSocketTimeoutException):
        stalled.recv()
    assert json.loads(healthy.recv())["e"] == "trade"
    assert next(c for c in sim.connections() if c["id"] == target)["stalled"] is True
    stalled.settimeout(5)
    assert json.loads(stalled.recv())["e"] == "trade"  # resumes after the stall, socket never closed
    stalled.close()
    healthy.close()


@pytest.mark.timeout(60)
def test_depth_gap_skips_update_ids(sim) -> None:
    before = {c["id"] for c in sim.connections()}
    ws = _connect(sim, "/ws/btcusdt@depth@100ms")
    target = _ids(sim, before)
    last = json.loads(ws.recv())["u"]
    sim.set_faults({"depth_gap": {"connections": target, "symbol": "BTCUSDT", "count": 2}})
    gaps = 0
    for _ in range(8):
        event = json.loads(ws.recv())
        if event["U"] != last + 1:
            gaps += 1
        last = event["u"]
    ws.close()
    assert gaps == 1


@pytest.mark.timeout(60)
def test_duplicate_and_reorder_frames(sim) -> None:
    before = {c["id"] for c in sim.connections()}
    ws = _connect(sim, "/ws/btcusdt@trade")
    target = _ids(sim, before)
    sim.set_faults({"duplicate": {"connections": target, "probability": 1.0, "seconds": 30}})
    ids = [json.loads(ws.recv())["t"] for _ in range(400)]
    tail = ids[-40:]
    assert any(tail[s : s + 38 : 2] == tail[s + 1 : s + 39 : 2] for s in (0, 1)), tail
    sim.clear_faults()
    sim.set_faults({"reorder": {"connections": target, "probability": 1.0, "seconds": 30}})
    ids = [json.loads(ws.recv())["t"] for _ in range(200)]
    assert any(b < a for a, b in itertools.pairwise(ids)), "some trade ids must arrive out of order"
    ws.close()


@pytest.mark.timeout(60)
def test_server_shutdown_event_then_close(sim) -> None:
    before = {c["id"] for c in sim.connections()}
    ws = _connect(sim, "/stream?streams=btcusdt@trade")
    target = _ids(sim, before)
    sim.set_faults({"server_shutdown": {"connections": target, "close_after_s": 0.3}})
    seen = None
    for _ in range(10_000):
        opcode, data = ws.recv_data(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            assert int.from_bytes(data[:2], "big") == 1001
            break
        message = json.loads(data)
        if message.get("e") == "serverShutdown":
            seen = message
    assert seen is not None and isinstance(seen["E"], int)


def _fresh_price(sim) -> str:
    bid = requests.get(f"{sim.rest_url}/api/v3/ticker/bookTicker", params={"symbol": "BTCUSDT"}, timeout=5).json()["bidPrice"]
    return str(Decimal(bid) - 300)


@pytest.mark.timeout(60)
def test_rest_5xx_after_execution_leaves_the_order_placed(sim) -> None:
    key, secret = new_account(sim)
    sim.set_faults({"rest_error": {"mode": "error", "path": "/api/v3/order", "method": "POST", "status": 503}})
    client_id = "unk-" + uuid.uuid4().hex[:10]
    response = signed(sim, "POST", "/api/v3/order", key, secret, symbol="BTCUSDT", side="BUY", type="LIMIT",
                      timeInForce="GTC", quantity="0.001", price=_fresh_price(sim), newClientOrderId=client_id)
    assert response.status_code == 503 and response.json()["code"] == -1007
    found = signed(sim, "GET", "/api/v3/order", key, secret, symbol="BTCUSDT", origClientOrderId=client_id)
    assert found.status_code == 200 and found.json()["status"] == "NEW"


@pytest.mark.timeout(60)
def test_rest_timeout_after_execution_leaves_the_order_placed(sim) -> None:
    key, secret = new_account(sim)
    sim.set_faults({"rest_error": {"mode": "timeout", "delay_s": 3, "path": "/api/v3/order", "method": "POST"}})
    client_id = "tmo-" + uuid.uuid4().hex[:10]
    with pytest.raises(requests.Timeout):
        signed(sim, "POST", "/api/v3/order", key, secret, timeout=1.0, symbol="BTCUSDT", side="BUY", type="LIMIT",
               timeInForce="GTC", quantity="0.001", price=_fresh_price(sim), newClientOrderId=client_id)
    found = signed(sim, "GET", "/api/v3/order", key, secret, symbol="BTCUSDT", origClientOrderId=client_id)
    assert found.json()["clientOrderId"] == client_id


@pytest.mark.timeout(60)
def test_429_storm_then_recovery(sim) -> None:
    sim.set_faults({"http_429": {"seconds": 1.5, "retry_after_s": 2}})
    response = requests.get(f"{sim.rest_url}/api/v3/time", timeout=5)
    assert response.status_code == 429
    assert response.json()["code"] == -1003 and response.headers["Retry-After"] == "2"
    time.sleep(1.7)
    assert requests.get(f"{sim.rest_url}/api/v3/time", timeout=5).status_code == 200


@pytest.mark.timeout(60)
def test_liquidity_withdrawal_widens_the_spread_and_thins_depth(sim_exchange_factory) -> None:
    # a paused flow advanced by explicit steps: the episode's effect does not depend on machine load
    paused = sim_exchange_factory(events_per_s=0, symbols="ETHUSDT")

    def sample() -> tuple[Decimal, Decimal]:
        depth = requests.get(f"{paused.rest_url}/api/v3/depth", params={"symbol": "ETHUSDT", "limit": 10}, timeout=5).json()
        spread = Decimal(depth["asks"][0][0]) - Decimal(depth["bids"][0][0])
        near = sum(Decimal(q) for _, q in depth["bids"][:5] + depth["asks"][:5])
        return spread, near

    normal = []
    for _ in range(5):
        paused.step(400)
        normal.append(sample())
    paused.set_faults({"liquidity_withdrawal": {"symbol": "ETHUSDT", "seconds": 30, "extra_ticks": 30, "size_factor": 0.1}})
    paused.step(1500)
    withdrawn = []
    for _ in range(5):
        paused.step(400)
        withdrawn.append(sample())
    assert max(s for s, _ in normal) <= Decimal("0.10")
    assert min(s for s, _ in withdrawn) > max(s for s, _ in normal)
    assert min(s for s, _ in withdrawn) >= Decimal("0.20")
    assert sum(n for _, n in withdrawn) < sum(n for _, n in normal) / 2


@pytest.mark.timeout(60)
def test_ping_pong_inbound_limit_and_connection_lifetime(sim_exchange_factory) -> None:
    quick = sim_exchange_factory(events_per_s=100, ping_interval_s=0.3, pong_timeout_s=1.2, max_connection_s=3.0)

    async def scenario() -> tuple[float, float, int | None, float]:
        async with aiohttp.ClientSession() as session:
            # a client that never answers pings is dropped after pong_timeout_s
            started = time.monotonic()
            ws = await session.ws_connect(f"{quick.ws_url}/ws/btcusdt@trade", autoping=False)
            pings = 0
            async for msg in ws:
                pings += msg.type == aiohttp.WSMsgType.PING
            silent = time.monotonic() - started
            assert pings >= 2
            # an answering client outlives it, until max_connection_s
            started = time.monotonic()
            ws = await session.ws_connect(f"{quick.ws_url}/ws/btcusdt@trade", autoping=True)
            async for _ in ws:
                pass
            polite = time.monotonic() - started
            # more than 5 messages a second closes the connection with 1008
            ws = await session.ws_connect(f"{quick.ws_url}/ws")
            for i in range(8):
                await ws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
            started = time.monotonic()
            async for _ in ws:
                pass
            return silent, polite, ws.close_code, time.monotonic() - started

    silent, polite, code, flood = asyncio.run(scenario())
    assert 1.0 <= silent <= 2.5
    assert 2.5 <= polite <= 4.5
    assert code == 1008 and flood < 2


@pytest.mark.timeout(60)
def test_faults_given_at_start_are_scheduled_and_repeat(sim_exchange_factory) -> None:
    chaotic = sim_exchange_factory(events_per_s=300, faults={"drop": {"connections": "all", "after_s": 1.0, "every_s": 1.0}})
    lifetimes = []
    for _ in range(2):
        ws = websocket.create_connection(f"{chaotic.ws_url}/ws/btcusdt@trade", timeout=5)
        started = time.monotonic()
        with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError, OSError)):
            for _ in range(100_000):
                ws.recv()
        lifetimes.append(time.monotonic() - started)
    assert all(lifetime < 2.5 for lifetime in lifetimes)
    assert chaotic.control("GET", "/_sim/faults")["scheduled"] == 1


@pytest.mark.timeout(60)
def test_repeated_rest_error_rearms_instead_of_stacking(sim) -> None:
    sim.set_faults({"rest_error": {"path": "/api/v3/time", "count": 1, "every_s": 0.1}})
    time.sleep(0.8)
    statuses = [requests.get(f"{sim.rest_url}/api/v3/time", timeout=5).status_code for _ in range(3)]
    assert statuses[0] == 503
    assert statuses[1:].count(503) <= 1  # at most one re-arm happened in between, never a backlog of ~8
    pending = sim.control("GET", "/_sim/faults")["rest_errors"]
    assert len(pending) <= 1


@pytest.mark.timeout(60)
def test_bad_control_requests_get_400_and_the_simulator_keeps_serving(sim) -> None:
    base = sim.rest_url
    bad = [
        requests.post(f"{base}/_sim/faults", json={"explode": {}}, timeout=5),
        requests.post(f"{base}/_sim/faults", data=b"{not json", timeout=5),
        requests.post(f"{base}/_sim/accounts", json={"api_key": "k"}, timeout=5),
        requests.post(f"{base}/_sim/accounts", json={"api_key": "k", "api_secret": "s", "maker_fee": "abc"}, timeout=5),
        requests.get(f"{base}/_sim/trades", params={"symbol": "NOPE"}, timeout=5),
    ]
    for response in bad:
        assert response.status_code == 400, (response.request.url, response.text)
        assert "error" in response.json()
    assert sim.health()["ok"] is True
