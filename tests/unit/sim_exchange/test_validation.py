"""Order parameter filters, signatures, rate-limit windows and the fault plan."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from sim_exchange import auth, errors
from sim_exchange.engine import OrderType, Side, TimeInForce
from sim_exchange.faults import (
    ConnectionFaults,
    Drop,
    FaultSpecError,
    RestError,
    parse_faults,
    resolve_targets,
)
from sim_exchange.filters import build_order_request
from sim_exchange.rate_limit import RateLimits
from sim_exchange.symbols import make_spec

SPEC = make_spec("BTCUSDT")


def _order(**params: str):
    base = {"side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.001", "price": "60000.01"}
    base.update(params)
    return build_order_request(SPEC, {k: v for k, v in base.items() if v is not None}, "key", 6_000_000)


def test_valid_limit_order_becomes_ticks_and_lots() -> None:
    request = _order()
    assert (request.side, request.type, request.tif) == (Side.BUY, OrderType.LIMIT, TimeInForce.GTC)
    assert request.price == 6_000_001 and request.qty == 100


@pytest.mark.parametrize(
    ("params", "code", "msg"),
    [
        ({"price": "60000.015"}, -1013, "Filter failure: PRICE_FILTER"),
        ({"price": "0.001"}, -1013, "Filter failure: PRICE_FILTER"),
        ({"quantity": "0.000011"}, -1013, "Filter failure: LOT_SIZE"),
        ({"quantity": "100000"}, -1013, "Filter failure: LOT_SIZE"),
        ({"quantity": "0.00001", "price": "100.00"}, -1013, "Filter failure: NOTIONAL"),
        ({"quantity": "1e-3"}, -1100, None),
        ({"price": None}, -1102, "Mandatory parameter 'price' was not sent, was empty/null, or malformed."),
        ({"timeInForce": None}, -1102, None),
        ({"timeInForce": "GTX"}, -1115, "Invalid timeInForce."),
        ({"side": "HOLD"}, -1117, "Invalid side."),
        ({"type": "STOP"}, -1116, "Invalid orderType."),
        ({"type": "MARKET", "timeInForce": None, "price": None, "quoteOrderQty": "10"}, -1102, None),
        ({"type": "MARKET", "price": None}, -1106, "Parameter 'timeInForce' sent when not required."),
        ({"type": "MARKET", "timeInForce": None, "quantity": "0.00001", "price": None}, -1013, "Filter failure: NOTIONAL"),
        ({"newClientOrderId": "bad id with spaces"}, -1100, None),
    ],
)
def test_bad_order_parameters_get_binance_errors(params, code, msg) -> None:
    with pytest.raises(errors.BinanceError) as info:
        _order(**params)
    assert info.value.code == code
    if msg:
        assert info.value.msg == msg


def test_market_by_quote_quantity() -> None:
    request = _order(type="MARKET", timeInForce=None, price=None, quantity=None, quoteOrderQty="100.5")
    assert request.quote_qty == Decimal("100.5") and request.qty is None


def test_signature_accepts_the_exact_payload_only() -> None:
    payload = "symbol=BTCUSDT&side=BUY&timestamp=1"
    signature = auth.sign("secret", payload)
    auth.verify_signature("secret", f"{payload}&signature={signature}")
    auth.verify_signature("secret", f"{payload}&signature={signature.upper()}")
    for total in (f"{payload}&signature={signature[:-1]}0", f"{payload}x&signature={signature}", payload):
        with pytest.raises(errors.BinanceError) as info:
            auth.verify_signature("secret", total)
        assert info.value.code == -1022


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"timestamp": "10000"}, None),
        ({"timestamp": "15000"}, None),
        ({"timestamp": "4999"}, -1021),
        ({"timestamp": "11001"}, -1021),
        ({"timestamp": "1000", "recvWindow": "60000"}, None),
        ({"timestamp": "1000", "recvWindow": "60001"}, -1131),
        ({}, -1102),
    ],
)
def test_timestamp_and_recv_window(params, code) -> None:
    now = 10_000
    if code is None:
        auth.check_timestamp(params, now if params.get("timestamp") != "15000" else 14_500)
        return
    with pytest.raises(errors.BinanceError) as info:
        auth.check_timestamp(params, now)
    assert info.value.code == code


def test_request_weight_window_resets_each_minute() -> None:
    limits = RateLimits(weight_per_minute=10, orders_per_10s=2, orders_per_day=100)
    assert limits.charge_weight("ip", 6, 60_000) == 6
    with pytest.raises(errors.BinanceError) as info:
        limits.charge_weight("ip", 5, 90_000)
    assert (info.value.code, info.value.status) == (-1003, 429)
    assert limits.weight.retry_after_s(90_000) == 30
    assert limits.charge_weight("ip", 5, 120_000) == 5
    limits.charge_order("a", 0)
    limits.charge_order("a", 1)
    with pytest.raises(errors.BinanceError) as info:
        limits.charge_order("a", 2)
    assert info.value.code == -1015


def test_faults_json_parses_and_rejects_unknown_fields() -> None:
    clear, faults = parse_faults({"clear": True, "drop": {"connections": 1, "after_s": 2}, "rest_error": {}})
    assert clear
    assert faults[0][0] == Drop(connections=1) and faults[0][1].after_s == 2
    assert isinstance(faults[1][0], RestError) and faults[1][0].after_execution
    for bad in ({"explode": {}}, {"stall": {"secs": 1}}, {"drop": {"connections": "some"}}, {"duplicate": {"probability": 2}}):
        with pytest.raises(FaultSpecError):
            parse_faults(bad)


def test_targets_resolve_against_live_connections() -> None:
    rng = random.Random(1)
    assert resolve_targets("all", [3, 1, 2], rng) == [1, 2, 3]
    assert resolve_targets("oldest", [3, 1], rng) == [1]
    assert resolve_targets("newest", [3, 1], rng) == [3]
    assert resolve_targets([1, 9], [1, 2], rng) == [1]
    assert len(resolve_targets("random", [1, 2, 3], rng)) == 1
    assert resolve_targets("all", [], rng) == []


def test_connection_fault_plan_gaps_duplicates_reorders_and_stalls() -> None:
    state = ConnectionFaults(random.Random(0))
    state.gaps["BTCUSDT"] = 1
    assert state.plan(b"d1", "BTCUSDT", 0.0) == []
    assert state.plan(b"d2", "BTCUSDT", 0.0) == [b"d2"]
    assert state.plan(b"t", None, 0.0) == [b"t"]
    state.duplicate_p, state.duplicate_until = 1.0, 10.0
    assert state.plan(b"x", None, 1.0) == [b"x", b"x"]
    state.duplicate_p = 0.0
    state.reorder_p, state.reorder_until = 1.0, 10.0
    assert state.plan(b"a", None, 1.0) == []
    assert state.plan(b"b", None, 1.0) == [b"b", b"a"]
    state.reorder_p = 0.0
    state.stalled_until = 5.0
    assert state.plan(b"c", None, 4.0) == []
    assert state.plan(b"c", None, 6.0) == [b"c"]
