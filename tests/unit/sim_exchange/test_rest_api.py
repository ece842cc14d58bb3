"""The REST API's pure parts: Binance's request weights and parameter parsing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim_exchange.errors import BinanceError
from sim_exchange.rest_api import depth_weight, int_param, parse_params, request_weight


@pytest.mark.parametrize(("limit", "weight"), [(1, 5), (100, 5), (101, 25), (500, 25), (501, 50), (1000, 50),
                                               (1001, 250), (5000, 250)])
def test_depth_weight_follows_binances_table(limit: int, weight: int) -> None:
    assert depth_weight(limit) == weight
    assert request_weight("/api/v3/depth", "GET", {"symbol": "BTCUSDT", "limit": str(limit)}) == weight


@pytest.mark.parametrize(("path", "method", "params", "weight"), [
    ("/api/v3/depth", "GET", {"symbol": "BTCUSDT"}, 5),  # limit defaults to 100
    ("/api/v3/ticker/bookTicker", "GET", {"symbol": "BTCUSDT"}, 2),
    ("/api/v3/ticker/bookTicker", "GET", {}, 4),
    ("/api/v3/openOrders", "GET", {"symbol": "BTCUSDT"}, 6),
    ("/api/v3/openOrders", "GET", {}, 80),
    ("/api/v3/openOrders", "DELETE", {"symbol": "BTCUSDT"}, 1),
    ("/api/v3/order", "GET", {}, 4),
    ("/api/v3/order", "POST", {}, 1),
    ("/api/v3/exchangeInfo", "GET", {}, 20),
    ("/api/v3/myTrades", "GET", {}, 20),
    ("/api/v3/ping", "GET", {}, 1),
])
def test_request_weights(path: str, method: str, params: dict[str, str], weight: int) -> None:
    assert request_weight(path, method, params) == weight


def test_query_and_body_are_one_parameter_set_and_a_name_twice_is_refused() -> None:
    assert parse_params("symbol=BTCUSDT&limit=5", b"side=BUY&price=") == {
        "symbol": "BTCUSDT", "limit": "5", "side": "BUY", "price": ""}
    with pytest.raises(BinanceError) as twice:
        parse_params("symbol=BTCUSDT", b"symbol=ETHUSDT")
    assert twice.value.code == -1101
    with pytest.raises(BinanceError) as bad:
        parse_params("", b"\xff\xfe")
    assert bad.value.code == -1100


@given(st.dictionaries(st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8),
                       st.text("abcXYZ0123456789.-_", max_size=12), max_size=6))
def test_parsed_parameters_round_trip(params: dict[str, str]) -> None:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    assert parse_params(query, b"") == params


def test_int_param_defaults_and_refuses_non_numbers() -> None:
    assert int_param({}, "limit", 100) == 100
    assert int_param({"limit": ""}, "limit", 100) == 100
    assert int_param({"limit": "7"}, "limit", 100) == 7
    with pytest.raises(BinanceError) as bad:
        int_param({"limit": "seven"}, "limit", 100)
    assert bad.value.code == -1100
